"""`run_bench`: train and score one recipe on every fold of a prepared store.

Per fold: the training split's AU rates give the per-AU weights; WCE trains the encoder end to
end and keeps the epoch with the best validation mean F1; AUNCE trains the encoder with AUNCE
alone, then `linear_eval` fits per-AU linear heads on the frozen encoder and keeps the head
epoch with the best validation mean F1. Either way the test split is read once, at the end,
and the fold becomes one `ResultRow`. A fold that fails becomes a `status="error"` row with
the message and the other folds go on.

Each fold has a run dir `<out_dir>/<dataset>-<backbone>-<loss>-seed<k>/fold<k>/` holding the
resolved config (`config.yaml`), one CSV row per epoch (`epochs.csv`), `last.pt` (resume) and
`best.pt` (the selected weights). Running the same config again resumes from `last.pt`.
"""
from __future__ import annotations

import hashlib
import math
import platform
import resource
import subprocess
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml
from rich.console import Console
from torch.utils.data import DistributedSampler

from .. import __version__
from ..errors import AustackError, ConfigError
from ..protocols import Protocol, load_protocol
from ..results.schema import ResultRow
from . import ddp
from .checkpoint import config_hash, load_for_resume, restore, save_checkpoint
from .config import BenchConfig
from .linear_eval import linear_eval
from .train import StepInfo, predict, train_one_epoch

CSV_COLUMNS = ("phase", "epoch", "train_loss", "val_f1_mean", "images_per_s", "seconds", "lr")


@dataclass
class BenchEvent:
    """What `run_bench` reports to its `progress` callback.

    kind: "fold" (a fold starts), "step" (a log interval inside an epoch), "epoch" (an epoch
    ended; `val_f1` set when it was scored), "fold_done" (its row is ready, in `row`).
    phase: "train" (the encoder) or "linear" (AUNCE's linear evaluation).
    """

    kind: str
    fold: int
    phase: str = "train"
    epoch: int = 0          # 1-based
    epochs: int = 0
    step: int = 0
    steps: int = 0
    loss: float | None = None
    images_per_s: float | None = None
    val_f1: float | None = None
    row: ResultRow | None = None


Progress = Callable[[BenchEvent], None]


# ---------------------------------------------------------------- the run, as data


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` -> this rank's GPU when CUDA is available, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
        if name == "cuda":
            name = f"cuda:{local_rank}"
        torch.cuda.set_device(torch.device(name))
    elif name != "cpu":
        raise ConfigError(f"unknown device {name!r}; expected auto, cpu, cuda or cuda:N")
    return torch.device(name)


@dataclass(frozen=True)
class StoreInfo:
    path: str
    dataset: str
    protocol: str
    protocol_hash: str
    aus: tuple[int, ...]
    checksum: str


def read_store_info(path: str | Path) -> StoreInfo:
    """The root attributes a run needs, read without loading any frame; the store checksum is
    the sha256 over its per-session image checksums."""
    from ..store import open_store
    with open_store(path) as store:
        sums = b"".join(bytes(s) for s in store.sessions["sha256"])
        return StoreInfo(str(store.path), store.dataset, store.settings.protocol, store.settings.protocol_hash,
                         store.aus, hashlib.sha256(sums).hexdigest())


def make_scheduler(cfg: BenchConfig, optimizer: torch.optim.Optimizer):
    """None for a constant learning rate (the paper's); cosine annealing to 0, stepped per epoch."""
    if cfg.lr_schedule == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))


def run_dir_for(cfg: BenchConfig, dataset: str, fold: int) -> Path:
    safe = lambda s: "".join(c if c.isalnum() or c in "._+-" else "_" for c in s)
    name = f"{safe(dataset)}-{safe(cfg.backbone)}-{safe(cfg.loss)}-seed{cfg.seed}"
    return Path(cfg.out_dir).expanduser().resolve() / name / f"fold{fold}"


def derive_seed(*parts: int) -> int:
    """An independent 31-bit seed for each (seed, fold, epoch, purpose) combination."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def seed_everything(seed: int) -> None:
    import random
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_sha() -> str | None:
    """The commit of the austack source tree, when it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory on CUDA; on the CPU the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if platform.system() != "Darwin" else kb / 2**20


# ---------------------------------------------------------------- entry point


def run_bench(cfg: BenchConfig, *, console: Console | None = None,
              progress: Progress | None = None) -> list[ResultRow]:
    """Run `cfg` on each of its folds (all folds of the protocol when `cfg.folds` is empty).

    Returns one ResultRow per fold, in fold order; a failed fold is a `status="error"` row.
    Under torchrun (WORLD_SIZE > 1) every rank returns the same rows; only rank 0 prints and
    writes files. Raises AustackError only for problems that concern every fold (the store,
    the protocol, the device, unknown backbone or loss names).
    """
    info = ddp.init_from_env("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
    local = ddp.current().local_rank
    device = resolve_device(cfg.device, local)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True   # one input size per run: autotuned kernels pay off
    console = console if console is not None else Console(stderr=True)
    if not info.is_main:
        console, progress = Console(quiet=True), None

    store = read_store_info(cfg.data)
    protocol = load_protocol(cfg.protocol or store.protocol)
    if protocol.dataset != store.dataset:
        raise ConfigError(f"protocol {protocol.id} is for {protocol.dataset}, but {store.path} holds {store.dataset}")
    missing = [a for a in protocol.aus if a not in store.aus]
    if missing:
        raise ConfigError(f"protocol {protocol.id} scores AU {missing} that {store.path} lacks (store AUs: "
                          f"{list(store.aus)}); prepare the store with this protocol")
    folds = cfg.folds or tuple(f.index for f in protocol.folds)
    for k in folds:
        protocol.fold(k)  # unknown fold: fail before any training
    _check_names(cfg)

    resolved = replace(cfg, data=store.path, protocol=protocol.id, folds=tuple(folds))
    _print_config(console, resolved, device, protocol, info.world_size)

    rows = []
    for k in folds:
        t0 = time.perf_counter()
        if progress:
            progress(BenchEvent("fold", k, epochs=cfg.epochs))
        try:
            row = _run_fold(resolved, k, store, protocol, device, console, progress)
        except AustackError as e:
            row = _error_row(resolved, k, store, protocol, device, str(e))
        except Exception as e:  # the grid goes on; the message stays on record
            console.print_exception(max_frames=4)
            row = _error_row(resolved, k, store, protocol, device, f"{type(e).__name__}: {e}")
        row.wall_s = time.perf_counter() - t0
        if row.status == "error":
            console.print(f"[red]fold {k} failed:[/red] {row.error}")
        rows.append(row)
        if progress:
            progress(BenchEvent("fold_done", k, row=row))
    return rows


def _check_names(cfg: BenchConfig) -> None:
    """Unknown backbone, loss or loss option: one error before any fold, with the closest names."""
    import timm

    from ..losses import create_loss
    from ..models import ENCODERS, HEADS
    from ..models.backbones import build_backbone

    create_loss(cfg.loss, **cfg.loss_options)
    arch, sep, tag = cfg.backbone.rpartition(".")
    arch = arch if sep and tag in HEADS else cfg.backbone
    if arch not in ENCODERS and not timm.is_model(arch):
        build_backbone(arch)  # raises UnknownNameError naming the closest encoders


def _print_config(console: Console, cfg: BenchConfig, device: torch.device, protocol: Protocol, world: int) -> None:
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip()
    console.rule("austack bench: resolved config")
    console.print(text, markup=False, highlight=False)
    console.print(f"device: {device}" + (f" x {world} processes" if world > 1 else "")
                  + f"   protocol: {protocol.id} ({protocol.hash})")
    if cfg.pretrained is None:
        console.print("[bold yellow]RANDOM INITIALISATION[/bold yellow]: no --pretrained weight file; published "
                      "numbers start from ImageNet weights, so these results do not compare with them")
    if cfg.limit_train:
        console.print(f"[yellow]--limit-train {cfg.limit_train}[/yellow]: debug subsampling; rows are marked "
                      f"not comparable")


# ---------------------------------------------------------------- one fold


def _base_row(cfg: BenchConfig, fold: int, store: StoreInfo, protocol: Protocol, device: torch.device) -> ResultRow:
    return ResultRow(
        dataset=store.dataset, protocol=protocol.id, protocol_hash=protocol.hash, store=store.path,
        store_checksum=store.checksum, fold=fold, backbone=cfg.backbone, loss=cfg.loss,
        loss_options=dict(cfg.loss_options), seed=cfg.seed, epochs=cfg.epochs, config=cfg.to_dict(),
        aus=list(protocol.aus), pretrained=cfg.pretrained, comparable=cfg.limit_train is None,
        device=_device_name(device), austack_version=__version__, torch_version=torch.__version__,
        git_sha=git_sha(), run_dir=str(run_dir_for(cfg, store.dataset, fold)),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _device_name(device: torch.device) -> str:
    world = ddp.current().world_size
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return f"{name} x{world}" if world > 1 else name


def _error_row(cfg, fold, store, protocol, device, message: str) -> ResultRow:
    row = _base_row(cfg, fold, store, protocol, device)
    row.status, row.error = "error", message
    return row


def _score_fn(aus):
    from ..metrics import evaluate
    return lambda probs, labels: float(evaluate(probs, labels, aus).f1_mean)


def _loss_seed(cfg: BenchConfig, fold: int) -> dict[str, int]:
    """A loss that draws random numbers (AUNCE's positive types) gets its own generator, so every
    rank draws the same ones; it is re-seeded each epoch (`_reseed_loss`) so a resumed run draws
    what an uninterrupted one would."""
    from ..losses import loss_options
    if "seed" in loss_options(cfg.loss) and "seed" not in cfg.loss_options:
        return {"seed": derive_seed(cfg.seed, fold, 2)}
    return {}


def _reseed_loss(loss_fn: torch.nn.Module, cfg: BenchConfig, fold: int, epoch: int) -> None:
    gen = getattr(loss_fn, "generator", None)
    if isinstance(gen, torch.Generator):
        gen.manual_seed(derive_seed(int(cfg.loss_options.get("seed", cfg.seed)), fold, epoch + 1, 2))


def _run_fold(cfg: BenchConfig, fold: int, store: StoreInfo, protocol: Protocol, device: torch.device,
              console: Console, progress: Progress | None) -> ResultRow:
    from ..data import AUStoreDataset, BatchAugment
    from ..losses import create_loss
    from ..metrics import evaluate
    from ..models import create_encoder

    info = ddp.current()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    run_dir = run_dir_for(cfg, store.dataset, fold)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    ddp.barrier()
    cfg_dict = cfg.to_dict()
    chash = config_hash(cfg_dict, protocol.hash)
    if info.is_main:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(
            {**cfg_dict, "fold": fold, "protocol_hash": protocol.hash, "config_hash": chash}, sort_keys=False))

    splits = {s: AUStoreDataset(store.path, protocol=protocol.id, fold=fold, split=s,
                                limit=cfg.limit_train if s == "train" else None)
              for s in ("train", "val", "test")}
    n_train = len(splits["train"])
    if n_train < cfg.batch_size * info.world_size:
        raise ConfigError(f"fold {fold}: {n_train} training frames do not fill one batch of "
                          f"{cfg.batch_size}" + (f" x {info.world_size} ranks" if info.enabled else "")
                          + "; lower --batch-size (or raise --limit-train)")
    aus = list(protocol.aus)
    score = _score_fn(aus)

    seed_everything(derive_seed(cfg.seed, fold, 0))
    encoder = create_encoder(cfg.backbone, len(aus), pretrained=cfg.pretrained).to(device)
    if device.type == "cuda":
        encoder = encoder.to(memory_format=torch.channels_last)
    loss_fn = create_loss(cfg.loss, **_loss_seed(cfg, fold), **cfg.loss_options).to(device)
    loss_fn.set_rates(splits["train"].au_rates(), aus=aus)
    mean, std = encoder.config.mean, encoder.config.std
    policy = cfg.augment or ("simclr" if loss_fn.views == 2 else "basic")
    train_aug = BatchAugment.from_policy(policy, cfg.image_size, views=loss_fn.views, train=True, mean=mean,
                                         std=std, seed=derive_seed(cfg.seed, fold, 0, info.rank, 3)).to(device)
    eval_aug = BatchAugment(cfg.image_size, views=1, train=False, mean=mean, std=std, seed=0).to(device)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=cfg.lr, betas=(0.9, 0.999),
                                  weight_decay=cfg.weight_decay, fused=device.type == "cuda")
    scaler = None   # bf16 autocast needs no loss scaling; kept in the checkpoint format for fp16
    scheduler = make_scheduler(cfg, optimizer)
    supervised = loss_fn.takes == "probs"
    model = ddp.wrap(encoder, device, find_unused=not supervised)
    if cfg.compile:   # training steps only: validation and test run the eager encoder
        model = torch.compile(model)
    best_path = run_dir / "best.pt"

    history: list[dict[str, Any]] = []
    best = {"epoch": 0, "val_f1_mean": -math.inf}
    start = 0
    state = load_for_resume(run_dir, cfg_dict, protocol.hash)
    if state is not None:
        restore(state, model=encoder, optimizer=optimizer, scaler=scaler, scheduler=scheduler)
        start, history, best = state["epoch"] + 1, state["history"], state["best"]
        console.print(f"fold {fold}: resuming from {run_dir / 'last.pt'} after epoch {start}")

    loaders = _Loaders(splits, cfg, fold)
    images, seconds = 0, 0.0
    for epoch in range(start, cfg.epochs):
        # Each epoch starts from seeds of its own, so a resumed run continues exactly.
        seed_everything(derive_seed(cfg.seed, fold, epoch + 1, info.rank))
        _reseed_loss(loss_fn, cfg, fold, epoch)
        train_aug.manual_seed(derive_seed(cfg.seed, fold, epoch + 1, info.rank, 3))
        loader = loaders.train(epoch)

        def on_log(s: StepInfo, epoch=epoch):
            if progress:
                progress(BenchEvent("step", fold, "train", epoch + 1, cfg.epochs, s.step, s.steps, s.loss,
                                    s.images_per_s * info.world_size))

        stats = train_one_epoch(model, loader, loss_fn, optimizer, train_aug, device, grad_clip=cfg.grad_clip,
                                on_log=on_log)
        images += stats.images * info.world_size
        seconds += stats.seconds
        val_f1 = None
        if supervised:
            probs, labels, _ = predict(encoder, loaders.eval("val"), eval_aug, device)
            val_f1 = score(probs, labels)
            if val_f1 > best["val_f1_mean"]:  # strict: ties keep the earlier epoch
                best = {"epoch": epoch + 1, "val_f1_mean": val_f1}
                if info.is_main:
                    _save_atomic(encoder.state_dict(), best_path)
        history.append({"phase": "train", "epoch": epoch + 1, "train_loss": stats.loss, "val_f1_mean": val_f1,
                        "images_per_s": stats.images_per_s * info.world_size, "seconds": stats.seconds,
                        "lr": optimizer.param_groups[0]["lr"]})
        if scheduler is not None:
            scheduler.step()
        if info.is_main:
            _write_csv(run_dir / "epochs.csv", history)
            save_checkpoint(run_dir, model=encoder, optimizer=optimizer, scaler=scaler, scheduler=scheduler,
                            epoch=epoch, history=history, config=cfg_dict, protocol_hash=protocol.hash, best=best)
        ddp.barrier()
        if progress:
            progress(BenchEvent("epoch", fold, "train", epoch + 1, cfg.epochs, loss=stats.loss,
                                images_per_s=stats.images_per_s * info.world_size, val_f1=val_f1))

    row = _base_row(cfg, fold, store, protocol, device)
    row.n_train, row.n_val, row.n_test = (len(splits[s]) for s in ("train", "val", "test"))
    if supervised:
        if cfg.epochs == 0 or best["epoch"] == 0:
            raise ConfigError(f"fold {fold}: no epoch was trained (epochs={cfg.epochs}); nothing to select")
        encoder.load_state_dict(torch.load(best_path, map_location=device, weights_only=True))
        test_probs, test_labels, _ = predict(encoder, loaders.eval("test"), eval_aug, device)
        row.best_epoch, row.val_f1_mean = best["epoch"], best["val_f1_mean"]
    else:
        lin_history: list[dict[str, Any]] = []

        def on_epoch(entry):
            lin_history.append({"phase": "linear", "epoch": entry["epoch"], "train_loss": entry["linear_loss"],
                                "val_f1_mean": entry["val_f1_mean"], "images_per_s": None, "seconds": None,
                                "lr": None})
            if progress:
                progress(BenchEvent("epoch", fold, "linear", entry["epoch"], cfg.linear_epochs,
                                    loss=entry["linear_loss"], val_f1=entry["val_f1_mean"]))

        seed_everything(derive_seed(cfg.seed, fold, 10_000))
        wce = create_loss("wce").to(device)
        wce.set_rates(splits["train"].au_rates(), aus=aus)
        lin_aug = None
        if cfg.linear_augment:
            lin_aug = BatchAugment.from_policy("basic", cfg.image_size, views=1, train=True, mean=mean, std=std,
                                               seed=derive_seed(cfg.seed, fold, info.rank, 10_002)).to(device)
        result = linear_eval(encoder, train_loader=loaders.eval("train"), val_loader=loaders.eval("val"),
                             test_loader=loaders.eval("test"), eval_augment=eval_aug, train_augment=lin_aug,
                             loss_fn=wce, device=device, epochs=cfg.linear_epochs, score=score,
                             seed=derive_seed(cfg.seed, fold, 10_001), lr=cfg.linear_lr, on_epoch=on_epoch)
        if info.is_main:
            _write_csv(run_dir / "epochs.csv", history + lin_history)
        test_probs, test_labels = result.test_probs, result.test_labels
        row.best_epoch, row.val_f1_mean = result.best_epoch, result.val_f1_mean

    scores = evaluate(test_probs, test_labels, aus)
    row.f1 = [float(x) for x in scores.f1]
    row.accuracy = [float(x) for x in scores.accuracy]
    row.f1_mean, row.accuracy_mean = float(scores.f1_mean), float(scores.accuracy_mean)
    row.selected_on = "val"
    row.images_per_s = images / seconds if seconds > 0 else None
    row.peak_mem_mb = peak_memory_mb(device)
    return row


class _Loaders:
    """One train loader per fold, reshuffled each epoch from a seed of that epoch (so a resumed
    run reads batches in the order an uninterrupted one would), and eval loaders in row order.
    Under DDP each rank reads its own shard through a DistributedSampler."""

    def __init__(self, splits, cfg: BenchConfig, fold: int):
        self.splits, self.cfg, self.fold = splits, cfg, fold
        self._train = None
        self._eval: dict[str, Any] = {}

    def _make(self, split: str, *, shuffle: bool, drop_last: bool, seed: int):
        from ..data import make_loader
        args = (self.splits[split], self.cfg.batch_size)
        if ddp.current().enabled:
            return ddp.make_loader(*args, shuffle=shuffle, workers=self.cfg.workers, seed=seed, drop_last=drop_last)
        return make_loader(*args, shuffle=shuffle, workers=self.cfg.workers, seed=seed, drop_last=drop_last)

    def train(self, epoch: int):
        seed = derive_seed(self.cfg.seed, self.fold, 1)
        if self._train is None:
            self._train = self._make("train", shuffle=True, drop_last=True, seed=seed)
        if isinstance(self._train.sampler, DistributedSampler):
            self._train.sampler.set_epoch(epoch)
        else:
            self._train.generator.manual_seed(derive_seed(self.cfg.seed, self.fold, epoch + 1, 1))
        return self._train

    def eval(self, split: str):
        if split not in self._eval:
            self._eval[split] = self._make(split, shuffle=False, drop_last=False, seed=self.cfg.seed)
        return self._eval[split]


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    import csv
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for h in history:
            w.writerow({k: ("" if h.get(k) is None else h[k]) for k in CSV_COLUMNS})
    tmp.replace(path)
