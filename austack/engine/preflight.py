"""`open_run`: everything that does not depend on the fold, checked once before any training.

A mistake that would fail every fold (an unknown name or loss option, weights that cannot be
had or do not fit, a store that is missing, fails its cheap checks or whose images differ from
their digests, an unknown fold, a batch larger than some fold's training split, a
cross-dataset target sharing too few AUs, an output folder that cannot be written or lacks
room) is one error here: one message, no result row, no half-trained fold.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console

from ..devices import device_type, resolve_device
from ..errors import ConfigError
from ..fileio import check_free_space, check_writable_dir
from ..runs.config import BenchConfig
from ..store import read_store_info
from . import ddp
from .context import RunContext, config_hash, resolve_protocol
from .cross import open_targets
from .events import BenchListener
from .provenance import provenance


def open_run(cfg: BenchConfig, console: Console | None = None, progress: BenchListener | None = None) -> RunContext:
    info = ddp.init_from_env(device_type(cfg.device))
    device = resolve_device(cfg.device, info.local_rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True   # one input size per run: autotuned kernels pay off
    console = console if console is not None else Console(stderr=True)
    if not info.is_main:
        console, progress = Console(quiet=True), None
    _check_store(cfg.data)
    _check_images(cfg.data, console)
    store = read_store_info(cfg.data)
    protocol = resolve_protocol(cfg, store)
    folds = cfg.folds or tuple(f.index for f in protocol.folds)
    for k in folds:
        protocol.fold(k)  # unknown fold: fail before any training
    weights, model_bytes = _check_model(cfg, len(protocol.aus), console if info.is_main else None)
    _check_batch(cfg, store.path, protocol, folds, info.world_size)
    for path in cfg.test_data:   # a target is scored: its images must be intact too
        _check_store(path)
        _check_images(path, console)
    targets = open_targets(cfg, store, protocol, info.world_size)
    if info.is_main:
        check_writable_dir(cfg.out_dir, "--out-dir")
        check_free_space(cfg.out_dir, len(folds) * FILES_PER_MODEL * model_bytes + SPACE_MARGIN, "--out-dir",
                         f"{len(folds)} fold(s) of {cfg.backbone}")
    cfg = replace(cfg, data=store.path, protocol=protocol.id, folds=tuple(folds),
                  test_data=tuple(t.info.path for t in targets))
    return RunContext(cfg, store, protocol, device, config_hash(cfg, store, protocol, weights.sha256),
                      weights.sha256, console, progress, info.world_size, provenance(weights), weights,
                      targets)


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


def _check_images(path: str, console: Console) -> None:
    """Every session's image bytes against their recorded sha256, once per store (cached):
    a store whose images were rewritten must not train and be recorded as the intact one."""
    from ..store import check_images

    what = f"checking the image digests of {Path(path).name} (once per store)"
    with console.status(what) as status:
        check_images(path, lambda done, total: status.update(f"{what}: session {done + 1}/{total}"))


def _check_model(cfg: BenchConfig, n_au: int, console: Console | None):
    """Resolve the weights (file, timm tag, published, none) and build the loss and the encoder
    once with them: names, options and a file that does not fit fail here, before any fold.
    Returns the weights and the bytes of the encoder's state (what each saved copy takes)."""
    from ..losses import create_loss
    from ..models import create_encoder
    from ..models.pretrained import default_tag_note, resolve_weights

    create_loss(cfg.loss, **cfg.loss_options)
    weights = resolve_weights(cfg.pretrained, cfg.backbone)
    note = default_tag_note(cfg.pretrained, cfg.backbone)
    if note and console is not None:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    encoder = create_encoder(cfg.backbone, n_au, pretrained=weights, embed_dim=cfg.embed_dim)
    nbytes = sum(t.numel() * t.element_size() for t in encoder.state_dict().values())
    del encoder
    return weights, nbytes


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


# A fold's run dir holds the model about six times over: detector.pt and best.pt once each,
# last.pt with the optimiser's two moments; the margin covers predictions, CSV and config.
FILES_PER_MODEL = 6
SPACE_MARGIN = 8 << 20
