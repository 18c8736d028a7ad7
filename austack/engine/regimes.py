"""Training regimes: how a loss's training becomes a detector, declared by the loss (`loss.regime`).

A regime watches the epochs (`after_epoch`, which may score validation and keep the best
weights), carries its state through a resume (`state` / `load_state`), and at the end selects
the detector (`finish`): the encoder's weights to keep and, where the regime fits them, the
per-AU linear heads. Every choice is made on the validation subjects; the test split is
never seen here.

- "supervised" (WCE): the encoder's own probabilities; the epoch with the best validation mean
  F1 is kept.
- "linear_probe" (AUNCE): the encoder of the last epoch is frozen, and one linear classifier
  per AU is fitted on its embeddings, the head epoch chosen on validation.
A new regime is a class registered here; no other part of the engine changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..errors import ConfigError
from ..fileio import atomic_torch_save
from ..registry import Registry
from ..runs.rundir import BEST_NAME
from . import ddp
from .context import Fold, RunContext
from .seeds import seed_everything, seed_for
from .train import predict



@dataclass
class Selection:
    heads: torch.nn.Module | None          # fitted per-AU heads, or None: the encoder's own probs
    best_epoch: int                         # 1-based epoch chosen on validation
    val_f1_mean: float
    history: list[dict[str, Any]] = field(default_factory=list)   # extra epochs.csv rows


class Regime:
    name: ClassVar[str]

    def __init__(self, run: RunContext, fold: Fold):
        self.run, self.fold = run, fold

    def after_epoch(self, epoch: int) -> float | None:
        """Called after each training epoch (1-based); returns the validation F1 if it scored one."""
        return None

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass

    def finish(self) -> Selection:
        raise NotImplementedError

    def score(self, probs, labels) -> float:
        from ..metrics import evaluate
        return float(evaluate(probs, labels, self.run.aus).f1_mean)


REGIMES: Registry[type[Regime]] = Registry("training regime")


def regime_for(run: RunContext, fold: Fold) -> Regime:
    return REGIMES.get(fold.loss_fn.regime)(run, fold)


@REGIMES.register("supervised")
class Supervised(Regime):
    """Validation mean F1 after every epoch; the best epoch's weights (strictly better: ties keep
    the earlier one) are kept in memory and in `best.pt`."""

    def __init__(self, run, fold):
        super().__init__(run, fold)
        self.best = {"epoch": 0, "val_f1_mean": -math.inf}
        self.best_state: dict[str, torch.Tensor] | None = None

    def after_epoch(self, epoch: int) -> float:
        f = self.fold
        probs, labels, _ = predict(f.encoder, f.loaders.eval("val"), f.eval_aug, self.run.device,
                                   select=lambda out: out.probs)
        val_f1 = self.score(probs, labels)
        if val_f1 > self.best["val_f1_mean"]:
            self.best = {"epoch": epoch, "val_f1_mean": val_f1}
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in f.encoder.state_dict().items()}
            if ddp.current().is_main:
                atomic_torch_save(self.best_state, f.run_dir / BEST_NAME)
        return val_f1

    def state(self) -> dict[str, Any]:
        return {"best": dict(self.best)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.best = dict(state["best"])

    def finish(self) -> Selection:
        if self.best["epoch"] == 0:
            raise ConfigError(f"fold {self.fold.k}: no epoch was trained; nothing to select")
        state = self.best_state
        if state is None:   # resumed after the best epoch: rank 0 holds it on disk and sends it
            path = self.fold.run_dir / BEST_NAME
            main = ddp.current().is_main
            state = ddp.broadcast_object(torch.load(path, map_location="cpu", weights_only=True) if main else None)
        self.fold.encoder.load_state_dict(state)
        return Selection(None, int(self.best["epoch"]), float(self.best["val_f1_mean"]))


@REGIMES.register("linear_probe")
class LinearProbe(Regime):
    """The encoder of the last epoch, frozen; per-AU linear heads fitted with WCE on its
    embeddings of the training split, the head epoch chosen on validation."""

    def finish(self) -> Selection:
        from ..data import BatchAugment
        from ..losses import create_loss
        from .linear_eval import linear_eval

        run, f, cfg = self.run, self.fold, self.run.cfg
        seed_everything(seed_for(cfg.seed, "probe", fold=f.k))
        wce = create_loss("wce").to(run.device)
        wce.set_rates(f.splits["train"].au_rates(), aus=run.aus)
        views = None
        if cfg.linear_augment:
            c = f.encoder.config
            views = BatchAugment.from_policy(
                "basic", cfg.image_size, views=1, train=True, mean=c.mean, std=c.std, resize=run.resize,
                seed=seed_for(cfg.seed, "probe_augment", fold=f.k, rank=ddp.current().rank)).to(run.device)
        history: list[dict[str, Any]] = []

        def on_epoch(entry):
            history.append({"phase": "linear", "epoch": entry["epoch"], "train_loss": entry["linear_loss"],
                            "val_f1_mean": entry["val_f1_mean"]})
            if run.progress:
                from .events import BenchEvent
                run.progress(BenchEvent("epoch", f.k, "linear", entry["epoch"], cfg.linear_epochs,
                                        loss=entry["linear_loss"], val_f1=entry["val_f1_mean"]))

        result = linear_eval(f.encoder, train_loader=f.loaders.eval("train"), val_loader=f.loaders.eval("val"),
                             eval_augment=f.eval_aug, train_augment=views, loss_fn=wce, device=run.device,
                             epochs=cfg.linear_epochs, score=self.score, seed=seed_for(cfg.seed, "probe", fold=f.k),
                             lr=cfg.linear_lr, on_epoch=on_epoch)
        return Selection(result.heads, result.best_epoch, result.val_f1_mean, history)
