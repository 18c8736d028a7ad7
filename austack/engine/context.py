"""What a run knows before its first fold (`RunContext`), and what one fold is built from (`Fold`).

`open_run` resolves the store, protocol, device and config hash once; `build_fold` makes one
fold's datasets, loaders, encoder, loss, augmenters and optimizer from it. Seeds come from
`seeds.seed_for` with named purposes, so a resumed or repeated fold draws exactly the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from rich.console import Console

from ..errors import ConfigError
from ..protocols import Protocol, load_protocol
from ..runs.config import BenchConfig
from ..runs.rundir import fold_dir
from ..store import StoreInfo
from . import ddp
from .seeds import seed_everything, seed_for


def config_hash(cfg: BenchConfig, store: StoreInfo, protocol: Protocol, weights_sha256: str | None) -> str:
    """12 hex digits over every setting that can change a fold's number (`hashed` fields of
    BenchConfig, normalised: see `austack.results.identity`), the results version, the protocol's
    hash and the pretrained weights' content; not the store (results carry its identity
    separately) and not fold, seed, device, workers or paths. The weights count by content only:
    the same file reached by a tag, `published` or a path is one hash."""
    from ..results.identity import identity_hash

    settings = {k: v for k, v in cfg.hashed_settings().items() if k != "pretrained"}
    return identity_hash(settings, protocol=protocol.hash, weights=weights_sha256)


@dataclass
class RunContext:
    cfg: BenchConfig
    store: StoreInfo
    protocol: Protocol
    device: torch.device
    config_hash: str
    weights_sha256: str | None
    console: Console
    progress: Callable | None = None
    world_size: int = 1
    provenance: dict = field(default_factory=dict)   # versions, weight sha256, git state
    weights: Any = None    # models.pretrained.ResolvedWeights: the file every fold starts from
    targets: tuple = ()                              # cross-dataset targets (`cross.Target`), checked

    @property
    def aus(self) -> list[int]:
        return list(self.protocol.aus)

    @property
    def resize(self) -> int:
        """The side the stored faces are resized to before the crop (the paper: 256 for 224)."""
        return max(self.cfg.image_size, round(self.cfg.image_size / self.cfg.crop_fraction))

    def run_dir(self, fold: int) -> Path:
        """`<out_dir>/<dataset>-<backbone>-<loss>-<config hash>-seed<k>/fold<k>`: a changed
        setting is a new run dir, the same settings resume or reuse theirs."""
        safe = lambda s: "".join(c if c.isalnum() or c in "._+-" else "_" for c in s)
        c = self.cfg
        name = f"{safe(self.store.dataset)}-{safe(c.backbone)}-{safe(c.loss)}-{self.config_hash}-seed{c.seed}"
        return fold_dir(Path(c.out_dir).expanduser().resolve() / name, fold)


def resolve_protocol(cfg: BenchConfig, store: StoreInfo) -> Protocol:
    protocol = load_protocol(cfg.protocol or store.protocol)
    if protocol.dataset != store.dataset:
        raise ConfigError(f"protocol {protocol.id} is for {protocol.dataset}, but {store.path} holds {store.dataset}")
    missing = [a for a in protocol.aus if a not in store.aus]
    if missing:
        raise ConfigError(f"protocol {protocol.id} scores AU {missing} that {store.path} lacks (store AUs: "
                          f"{list(store.aus)}); prepare the store with this protocol")
    return protocol


@dataclass
class Fold:
    """Everything one fold trains and evaluates with."""

    k: int
    run_dir: Path
    splits: dict[str, Any]
    loaders: Any
    encoder: torch.nn.Module
    model: torch.nn.Module          # the encoder as trained: DDP-wrapped and/or compiled
    loss_fn: torch.nn.Module
    train_aug: torch.nn.Module
    eval_aug: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    history: list[dict[str, Any]] = field(default_factory=list)


def build_fold(run: RunContext, k: int) -> Fold:
    from ..data import AUStoreDataset
    from ..losses import create_loss
    from ..models import create_encoder
    from .loaders import FoldLoaders

    cfg, device, rank = run.cfg, run.device, ddp.current().rank
    splits = {s: AUStoreDataset(run.store.path, protocol=run.protocol.id, fold=k, split=s,
                                limit=cfg.limit_train if s == "train" else None) for s in ("train", "val", "test")}
    for split in ("train", "val"):   # the test split always keeps the store's (clean) labels
        add_label_noise(splits[split], cfg, k)
    seed_everything(seed_for(cfg.seed, "init", fold=k))
    encoder = create_encoder(cfg.backbone, len(run.aus), pretrained=run.weights or cfg.pretrained,
                             embed_dim=cfg.embed_dim).to(device)
    if device.type == "cuda":
        encoder = encoder.to(memory_format=torch.channels_last)
    loss_fn = create_loss(cfg.loss, **cfg.loss_options).to(device)
    loss_fn.set_rates(splits["train"].au_rates(), aus=run.aus)
    train_aug, eval_aug = make_augmenters(run, encoder, loss_fn, k, rank)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=cfg.lr, betas=(0.9, 0.999),
                                  weight_decay=cfg.weight_decay, fused=device.type == "cuda")
    scheduler = None   # constant lr (the paper's); cosine annealing to 0, stepped per epoch
    if cfg.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    # A loss that never reads `probs` leaves the classifier vectors without gradient under DDP.
    model = ddp.wrap(encoder, device, find_unused=loss_fn.regime != "supervised")
    if cfg.compile:   # training steps only: validation and test run the eager encoder
        model = torch.compile(model)
    return Fold(k, run.run_dir(k), splits, FoldLoaders(splits, cfg, k), encoder, model, loss_fn, train_aug,
                eval_aug, optimizer, scheduler)


def add_label_noise(dataset, cfg: BenchConfig, k: int) -> None:
    """Flip `cfg.label_noise` of the dataset's known labels in place (a noise study; unknown
    labels stay unknown). The flips depend on the seed, fold and split only, so every config of
    a study sees the same noisy labels."""
    from ..labels import flip_labels

    if cfg.label_noise:
        seed = seed_for(cfg.seed, "noise", fold=k, epoch=("train", "val").index(dataset.split))
        dataset.labels[:] = flip_labels(dataset.labels, cfg.label_noise, cfg.label_noise_kind, seed)


def make_augmenters(run: RunContext, encoder, loss_fn, k: int, rank: int):
    """The training views (the loss's own policy unless --augment says otherwise) and the
    deterministic evaluation view, both resizing the stored face the same way."""
    from ..data import BatchAugment

    cfg, pre = run.cfg, eval_preprocess(run, encoder)
    policy = cfg.augment or loss_fn.augment
    train = BatchAugment.from_policy(policy, cfg.image_size, views=loss_fn.views, train=True, mean=pre.mean,
                                     std=pre.std, resize=run.resize,
                                     seed=seed_for(cfg.seed, "augment", fold=k, rank=rank))
    return train.to(run.device), pre.module(seed=0).to(run.device)


def eval_preprocess(run: RunContext, encoder):
    """The fold's evaluation preprocessing: the run's resize and crop, the encoder weights'
    mean and std. The evaluation view and the detector both take it from here."""
    from ..data.preprocess import EvalPreprocess

    c = encoder.config
    return EvalPreprocess(run.cfg.image_size, tuple(c.mean), tuple(c.std), run.resize)
