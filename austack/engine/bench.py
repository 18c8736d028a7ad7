"""`run_bench`: train and score one recipe on every fold of a prepared store.

Read it like a reference training script. Once per run, `open_run` checks everything that does
not depend on the fold (settings, names, weights file, store, folds, batch size against every
fold, output folder) and fails with one message before any training. Then, per fold:

    build_fold -> fit -> select (the loss's regime) -> evaluate (val, test) -> score -> row

The test split is read once, at the end, by the detector the regime selected on validation.
Each fold saves `detector.pt` (rebuilt by `load_detector`) and `predictions.npz` in its run
dir (`austack.runs.rundir`), and becomes one `ResultRow`, built once. A fold that fails becomes a
`status="error"` row with the message and the other folds go on.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import yaml
from rich.console import Console

from ..errors import AustackError
from ..fileio import remove_stale_temps
from ..results.schema import ResultRow
from ..runs.config import BenchConfig
from ..runs.rundir import DETECTOR_NAME, save_predictions, write_config, write_epochs_csv
from . import ddp
from .context import Fold, RunContext, build_fold, eval_preprocess
from .events import BenchEvent, BenchListener
from .fit import FitStats, fit
from .preflight import open_run
from .provenance import peak_memory_mb
from .regimes import Selection, regime_for
from .rows import error_row, make_row, random_paper_recipe
from .train import predict


def run_bench(cfg: BenchConfig, *, console: Console | None = None,
              progress: BenchListener | None = None) -> list[ResultRow]:
    """Run `cfg` on each of its folds (all folds of the protocol when `cfg.folds` is empty).

    Returns one ResultRow per fold, in fold order; a failed fold is a `status="error"` row.
    With `cfg.test_data`, each finished fold's row is followed by its cross-dataset rows, one
    per target (`cross.score_target_safely`). Under torchrun every rank returns the same rows;
    only rank 0 prints and writes files.
    Raises AustackError, before any training, for problems that concern every fold.
    """
    from .cross import score_target_safely

    run = open_run(cfg, console, progress)
    print_run(run)
    rows = []
    for k in run.cfg.folds:
        rows.append(run_fold_safely(run, k))
        if rows[-1].status == "ok":
            rows += [score_target_safely(run, k, t, rows[-1]) for t in run.targets]
    return rows


def run_fold_safely(run: RunContext, k: int) -> ResultRow:
    t0 = time.perf_counter()
    if run.progress:
        run.progress(BenchEvent("fold", k, epochs=run.cfg.epochs))
    try:
        row = run_fold(run, k, t0)
    except AustackError as e:
        row = error_row(run, k, str(e), t0)
    except Exception as e:  # the grid goes on; the message stays on record
        run.console.print_exception(max_frames=4)
        row = error_row(run, k, f"{type(e).__name__}: {e}", t0)
    if row.status == "error":
        run.console.print(f"[red]fold {k} failed:[/red] {row.error}")
    if run.progress:
        run.progress(BenchEvent("fold_done", k, row=row))
    return row


def run_fold(run: RunContext, k: int, t0: float) -> ResultRow:
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(run.device)
    fold = build_fold(run, k)
    if ddp.current().is_main:
        fold.run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(fold.run_dir)   # left by a write that a kill interrupted
        write_config(fold.run_dir, run.cfg.to_dict(), fold=k, protocol_hash=run.protocol.hash,
                     config_hash=run.config_hash, store_identity=run.store.identity)
    ddp.barrier()
    regime = regime_for(run, fold)
    stats = fit(run, fold, regime)
    selection = regime.finish()
    detector = make_detector(run, fold, selection)
    outputs = {s: predict(detector, fold.loaders.eval(s), fold.eval_aug, run.device) for s in ("val", "test")}
    thresholds = choose(run, outputs["val"])
    return finish_fold(run, fold, selection, detector, outputs, thresholds, stats, t0)


def make_detector(run: RunContext, fold: Fold, selection: Selection):
    from ..models.detector import Detector

    cfg = run.cfg
    info = {"dataset": run.store.dataset, "protocol": run.protocol.id, "protocol_hash": run.protocol.hash,
            "store_identity": run.store.identity, "synthetic": run.store.synthetic, "fold": fold.k,
            "config_hash": run.config_hash, "loss": cfg.loss, "regime": fold.loss_fn.regime,
            "best_epoch": selection.best_epoch, "val_f1_mean": selection.val_f1_mean,
            "alignment": run.store.alignment, "threshold_policy": cfg.threshold}
    return Detector(fold.encoder, selection.heads, aus=run.aus, preprocess=eval_preprocess(run, fold.encoder),
                    info=info).to(run.device)


def choose(run: RunContext, val: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[float]:
    """The thresholds the test split is scored with: 0.5 (the paper's), or chosen per AU on the
    validation subjects (`--threshold val`)."""
    from ..metrics import choose_thresholds

    if run.cfg.threshold == "val":
        return choose_thresholds(val[0], val[1], run.aus)
    return [float(run.cfg.threshold)] * len(run.aus)


def finish_fold(run: RunContext, fold: Fold, selection: Selection, detector, outputs, thresholds,
                stats: FitStats, t0: float) -> ResultRow:
    from ..metrics import evaluate

    scores = evaluate(outputs["test"][0], outputs["test"][1], run.aus, thresholds)
    detector.thresholds = list(thresholds)
    fold.history += selection.history
    pred_path = sha = None
    if ddp.current().is_main:
        write_epochs_csv(fold.run_dir, fold.history)
        detector.save(fold.run_dir / DETECTOR_NAME)
        pred_path, sha = save_predictions(fold.run_dir, outputs, subjects_of(run, outputs), run.aus, thresholds)
    return make_row(
        run, fold.k, t0, status="ok",
        f1=[float(x) for x in scores.f1], accuracy=[float(x) for x in scores.accuracy],
        f1_mean=float(scores.f1_mean), accuracy_mean=float(scores.accuracy_mean),
        best_epoch=selection.best_epoch, val_f1_mean=selection.val_f1_mean,
        n_train=len(fold.splits["train"]), n_val=len(fold.splits["val"]), n_test=len(fold.splits["test"]),
        images_per_s=stats.images_per_s, peak_mem_mb=peak_memory_mb(run.device), thresholds=list(thresholds),
        predictions=None if pred_path is None else str(pred_path), predictions_sha256=sha,
        detector=str(fold.run_dir / DETECTOR_NAME))


def subjects_of(run: RunContext, outputs) -> dict[str, np.ndarray]:
    """The subject of every predicted row, per split (the unit of the bootstrap intervals)."""
    from ..store import open_store

    with open_store(run.store.path) as store:
        return {s: np.asarray(store.subjects[rows]).astype(str) for s, (_, _, rows) in outputs.items()}


def print_run(run: RunContext) -> None:
    """The resolved recipe, printed before the first fold (and kept with every row)."""
    console, cfg = run.console, run.cfg
    console.rule("austack bench: resolved config")
    console.print(yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip(), markup=False, highlight=False)
    world = f" x {run.world_size} processes" if run.world_size > 1 else ""
    console.print(f"device: {run.device}{world}   protocol: {run.protocol.id} ({run.protocol.hash})   "
                  f"config hash: {run.config_hash}", markup=False, highlight=False)
    if run.store.synthetic:
        console.print("[yellow]SYNTHETIC store[/yellow] (from `austack synth`): results are recorded as "
                      "synthetic and never listed beside published numbers")
    w = run.weights
    if w.is_random and random_paper_recipe(run):
        console.print(f"[bold yellow]RANDOM INITIALISATION[/bold yellow] (--pretrained {w.spec}): recipe "
                      f"{cfg.recipe} starts from random weights; its rows are marked not comparable with "
                      f"the published ones", highlight=False)
    elif w.is_random:
        console.print("[bold yellow]RANDOM INITIALISATION[/bold yellow]: no --pretrained weights; published "
                      "numbers start from ImageNet weights, so these results do not compare with them "
                      "(--pretrained published starts where they did)")
    else:
        console.print(f"weights: {w.label} ({w.path}, {w.size / 2**20:.1f} MiB, sha256 {w.sha256[:16]})",
                      markup=False, highlight=False)
    if cfg.limit_train:
        console.print(f"[yellow]--limit-train {cfg.limit_train}[/yellow]: debug subsampling; rows are marked "
                      f"not comparable")


__all__ = ["run_bench", "run_fold", "BenchEvent", "make_detector"]
