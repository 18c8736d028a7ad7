"""Fit: the epoch loop of one fold, resumable from `last.pt` after any epoch.

Each epoch starts from seeds of its own (global RNGs, loader order, views, the loss's
generator), so a resumed fold continues exactly as an uninterrupted one would. After each
epoch the regime may score validation; the history goes to `epochs.csv` and the state to
`last.pt` (rank 0 writes; every rank keeps the same state).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..runs.rundir import CHECKPOINT_NAME, write_epochs_csv
from . import ddp
from .checkpoint import load_for_resume, restore, save_checkpoint
from .context import Fold, RunContext
from .events import BenchEvent
from .regimes import Regime
from .seeds import seed_everything, seed_for
from .train import StepInfo, train_one_epoch


@dataclass
class FitStats:
    images: int = 0        # training images seen in this process's epochs, all ranks
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float | None:
        return self.images / self.seconds if self.seconds > 0 else None


def fit(run: RunContext, fold: Fold, regime: Regime) -> FitStats:
    cfg, info = run.cfg, ddp.current()
    start = _resume(run, fold, regime)
    stats = FitStats()
    for epoch in range(start, cfg.epochs):
        seed_everything(seed_for(cfg.seed, "epoch", fold=fold.k, epoch=epoch + 1, rank=info.rank))
        fold.loss_fn.reseed(seed_for(int(cfg.loss_options.get("seed", cfg.seed)), "loss", fold=fold.k,
                                     epoch=epoch + 1))
        fold.train_aug.manual_seed(seed_for(cfg.seed, "augment", fold=fold.k, epoch=epoch + 1, rank=info.rank))
        epoch_stats = train_one_epoch(fold.model, fold.loaders.train(epoch), fold.loss_fn, fold.optimizer,
                                      fold.train_aug, run.device, grad_clip=cfg.grad_clip,
                                      on_log=_step_reporter(run, fold.k, epoch))
        ddp.broadcast_buffers(fold.encoder)
        rate = epoch_stats.images_per_s * info.world_size
        stats.images += epoch_stats.images * info.world_size
        stats.seconds += epoch_stats.seconds
        val_f1 = regime.after_epoch(epoch + 1)
        fold.history.append({"phase": "train", "epoch": epoch + 1, "train_loss": epoch_stats.loss,
                             "val_f1_mean": val_f1, "images_per_s": rate, "seconds": epoch_stats.seconds,
                             "lr": fold.optimizer.param_groups[0]["lr"]})
        if fold.scheduler is not None:
            fold.scheduler.step()
        if info.is_main:
            write_epochs_csv(fold.run_dir, fold.history)
            save_checkpoint(fold.run_dir, model=fold.encoder, optimizer=fold.optimizer, scheduler=fold.scheduler,
                            epoch=epoch, history=fold.history, config_hash=run.config_hash, regime=regime.state())
        ddp.barrier()
        if run.progress:
            run.progress(BenchEvent("epoch", fold.k, "train", epoch + 1, cfg.epochs, loss=epoch_stats.loss,
                                    images_per_s=rate, val_f1=val_f1))
    return stats


def _resume(run: RunContext, fold: Fold, regime: Regime) -> int:
    """The first epoch to train (0-based): after the last one `last.pt` holds, if any.
    Rank 0 reads the file and sends its contents, so ranks need no shared filesystem."""
    main = ddp.current().is_main
    state = ddp.broadcast_object(load_for_resume(fold.run_dir, run.config_hash) if main else None)
    if state is None:
        return 0
    restore(state, model=fold.encoder, optimizer=fold.optimizer, scheduler=fold.scheduler)
    fold.history[:] = state["history"]
    regime.load_state(state["regime"])
    run.console.print(f"fold {fold.k}: resuming from {fold.run_dir / CHECKPOINT_NAME} after epoch "
                      f"{state['epoch'] + 1}")
    return state["epoch"] + 1


def _step_reporter(run: RunContext, k: int, epoch: int):
    if run.progress is None:
        return None
    world = ddp.current().world_size

    def on_log(s: StepInfo) -> None:
        run.progress(BenchEvent("step", k, "train", epoch + 1, run.cfg.epochs, s.step, s.steps, s.loss,
                                s.images_per_s * world))
    return on_log
