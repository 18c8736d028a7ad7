"""The loaders of one fold: the training split reshuffled per epoch, the others in row order."""
from __future__ import annotations

from typing import Any

from ..data import make_loader
from ..runs.config import BenchConfig
from . import ddp
from .seeds import seed_for


class FoldLoaders:
    """One train loader per fold, reshuffled each epoch from a seed of that epoch (so a resumed
    run reads batches in the order an uninterrupted one would), and eval loaders in row order.
    Under DDP each rank reads its own shard through a DistributedSampler."""

    def __init__(self, splits, cfg: BenchConfig, fold: int):
        self.splits, self.cfg, self.fold = splits, cfg, fold
        self._loaders: dict[str, Any] = {}

    def _get(self, split: str, *, train: bool):
        key = split if train or split != "train" else "train/eval"
        if key not in self._loaders:
            self._loaders[key] = make_loader(
                self.splits[split], self.cfg.batch_size, shuffle=train, workers=self.cfg.workers,
                seed=seed_for(self.cfg.seed, "loader", fold=self.fold), drop_last=train,
                distributed=ddp.current().enabled)
        return self._loaders[key]

    def train(self, epoch: int):
        loader = self._get("train", train=True)
        if ddp.current().enabled:
            loader.sampler.set_epoch(epoch)
        else:
            loader.generator.manual_seed(seed_for(self.cfg.seed, "loader", fold=self.fold, epoch=epoch + 1))
        return loader

    def eval(self, split: str):
        """Row-order batches of `split` ("train" too: the training split unshuffled)."""
        return self._get(split, train=False)
