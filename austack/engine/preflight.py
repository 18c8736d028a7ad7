"""`open_run`: everything that does not depend on the fold, checked once before any training.

A mistake that would fail every fold (an unknown name or loss option, an unreadable weights
file, a store that is missing or fails its cheap checks, an unknown fold, a batch larger than
some fold's training split, an output folder that cannot be written) is one ConfigError here:
one message, no result row, no half-trained fold.
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console

from ..errors import ConfigError
from ..fileio import sha256_file
from . import ddp
from .config import BenchConfig
from .context import RunContext, config_hash, read_store_info, resolve_device, resolve_protocol
from .events import Progress
from .provenance import provenance


def open_run(cfg: BenchConfig, console: Console | None = None, progress: Progress | None = None) -> RunContext:
    info = ddp.init_from_env("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
    device = resolve_device(cfg.device, info.local_rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True   # one input size per run: autotuned kernels pay off
    console = console if console is not None else Console(stderr=True)
    if not info.is_main:
        console, progress = Console(quiet=True), None
    _check_store(cfg.data)
    store = read_store_info(cfg.data)
    protocol = resolve_protocol(cfg, store)
    folds = cfg.folds or tuple(f.index for f in protocol.folds)
    for k in folds:
        protocol.fold(k)  # unknown fold: fail before any training
    weights_sha = _check_model(cfg, len(protocol.aus))
    _check_batch(cfg, store.path, protocol, folds, info.world_size)
    if info.is_main:
        check_writable_dir(cfg.out_dir, "--out-dir")
    cfg = replace(cfg, data=store.path, protocol=protocol.id, folds=tuple(folds))
    return RunContext(cfg, store, protocol, device, config_hash(cfg, store, protocol, weights_sha), weights_sha,
                      console, progress, info.world_size, provenance(weights_sha))


def _check_store(path: str) -> None:
    """The store's cheap structural checks (a full `austack verify` reads every byte)."""
    from .. import store as store_module

    folder = Path(path).expanduser()
    if folder.is_dir():       # most likely a raw dataset: the store is made from it, not onto it
        store = f"{folder.resolve().name or 'dataset'}.h5"
        raise ConfigError(f"--data {path} is a folder, not a prepared store; if it holds a raw dataset, "
                          f"prepare it first: `austack prepare DATASET {path} {store}`, then --data {store}",
                          path=path)
    if not folder.is_file():
        raise ConfigError(f"no store at {path}; make one with `austack prepare DATASET RAW_DIR {path}`",
                          path=path)
    check = getattr(store_module, "check_store", None)
    if check is not None:
        check(path)


def _check_model(cfg: BenchConfig, n_au: int) -> str | None:
    """Build the loss and the encoder once (names, options, weights file); the weights' sha256."""
    from ..losses import create_loss
    from ..models import create_encoder

    create_loss(cfg.loss, **cfg.loss_options)
    encoder = create_encoder(cfg.backbone, n_au, pretrained=cfg.pretrained)
    del encoder
    return None if cfg.pretrained is None else sha256_file(cfg.pretrained)


def _check_batch(cfg: BenchConfig, path: str, protocol, folds, world: int) -> None:
    from ..store import open_store

    need = cfg.batch_size * world
    with open_store(path) as store:
        for k in folds:
            n = len(store.get_subset(protocol, fold=k, split="train"))
            n = min(n, cfg.limit_train) if cfg.limit_train else n
            if n < need:
                ranks = f" x {world} ranks" if world > 1 else ""
                raise ConfigError(f"fold {k}: {n} training frames do not fill one batch of {cfg.batch_size}"
                                  f"{ranks}; lower --batch-size (or raise --limit-train)")


def check_writable_dir(folder: str | Path, option: str) -> Path:
    """Create `folder` if needed and prove a file can be written there, or say which option to change."""
    path = Path(folder).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".austack-write-test-"):
            pass
    except OSError as e:
        raise ConfigError(f"cannot write to {path} ({e.strerror or e}); pass {option} with a writable folder",
                          path=path) from None
    return path
