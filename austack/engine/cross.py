"""Cross-dataset scoring: a fold's detector, trained and selected on the source store, scored on
other stores (`--test-data`) over the AUs both label. docs/cross-dataset.md has the protocol.

`open_targets` checks every target once, before any training: the store, its protocol (whose
label rule made its labels: DISFA intensity >= 2, occurrence codes elsewhere), the shared AUs
(at least `MIN_SHARED_AUS`), the alignment, and which rows are scored: the whole target, or
with `--test-fold K` the target protocol's fold-K test subjects. `score_target` then loads a
fold's `detector.pt` (so a fold recorded earlier is scored without retraining), predicts the
target rows, applies the thresholds chosen on the source, and writes the predictions (indexing
the target store) under `<run dir>/on-<target>-<identity>-<split>/fold<k>/`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..data import AUStoreDataset, make_loader
from ..errors import AustackError, ConfigError
from ..protocols import Protocol, shared_aus
from ..results.schema import ResultRow
from ..runs.config import BenchConfig
from ..store import StoreInfo, read_store_info
from .context import RunContext
from .rows import error_row, make_row

# An Avg F1 over one or two AUs is mostly the base rate of those AUs: a target sharing fewer
# AUs with the source is refused. The field's smallest cross-dataset set (BP4D <-> DISFA) has 5.
MIN_SHARED_AUS = 3
ALL = "all"


@dataclass
class Target:
    """One store a run's detectors are scored on, resolved before any training."""

    info: StoreInfo
    protocol: Protocol                 # the target store's own: its label rule made the labels
    aus: tuple[int, ...]               # shared AUs, in the source's order
    source_columns: tuple[int, ...]    # their columns in the detector's output
    target_columns: tuple[int, ...]    # their columns in the target store's labels
    rows: np.ndarray                   # target store rows scored (int64, ascending)
    split: str                         # "all" or "fold<K>" (the target protocol's fold-K test part)

    @property
    def name(self) -> str:
        """The folder of this target's predictions inside a run dir."""
        safe = "".join(c if c.isalnum() or c in "._+-" else "_" for c in self.info.dataset)
        return f"on-{safe}-{self.info.identity[:8]}-{self.split}"


def check_shared(source_name: str, source_aus, target_path: str, target_name: str, target_aus) -> list[int]:
    shared = shared_aus(source_aus, target_aus)
    if len(shared) < MIN_SHARED_AUS:
        what = "no AU" if not shared else f"only AU {' '.join(map(str, shared))}"
        raise ConfigError(f"{target_path} ({target_name}, AUs {' '.join(map(str, target_aus))}) shares {what} with "
                          f"the source {source_name} (AUs {' '.join(map(str, source_aus))}); cross-dataset scoring "
                          f"needs at least {MIN_SHARED_AUS} shared AUs (docs/cross-dataset.md)", path=target_path)
    return shared


def open_targets(cfg: BenchConfig, source: StoreInfo, protocol: Protocol, world_size: int) -> tuple[Target, ...]:
    """Every `--test-data` store checked and resolved, or one ConfigError naming the store."""
    if not cfg.test_data:
        if cfg.test_fold is not None:
            raise ConfigError("--test-fold picks the target's test subjects; give the target with --test-data")
        return ()
    if world_size > 1:
        raise ConfigError("cross-dataset scoring runs in one process: train under torchrun without --test-data, "
                          "then rerun the same command with --test-data in one process (trained folds are reused)")
    targets, seen = [], {source.identity: f"the source store {source.path}"}
    for path in cfg.test_data:
        t = _open_target(cfg, path, source, protocol)
        if t.info.identity in seen:
            raise ConfigError(f"--test-data {path} is the same store as {seen[t.info.identity]}; give each "
                              f"target once, and a store other than --data", path=path)
        seen[t.info.identity] = path
        targets.append(t)
    return tuple(targets)


def _open_target(cfg: BenchConfig, path: str, source: StoreInfo, protocol: Protocol) -> Target:
    from ..store import open_store

    info = read_store_info(path)
    with open_store(path) as store:
        target_protocol = store.protocol()
        aus = check_shared(source.dataset, protocol.aus, info.path, info.dataset, target_protocol.aus)
        if cfg.test_fold is None:
            rows, split = np.arange(len(store), dtype=np.int64), ALL
        else:
            target_protocol.fold(cfg.test_fold)   # unknown fold: fails here, naming the folds there are
            rows, split = store.get_subset(target_protocol, fold=cfg.test_fold, split="test"), f"fold{cfg.test_fold}"
    if len(rows) == 0:
        raise ConfigError(f"{path}: {target_protocol.id} fold {cfg.test_fold} has no test frames in this store",
                          path=path)
    _check_alignment(source, info)
    return Target(info, target_protocol, tuple(aus), tuple(protocol.aus.index(a) for a in aus),
                  tuple(target_protocol.aus.index(a) for a in aus), rows, split)


def _check_alignment(source: StoreInfo, target: StoreInfo) -> None:
    """Faces aligned another way are another input distribution: refuse rather than mix. The stored
    size may differ (every face is resized to the network's input)."""
    a = {k: v for k, v in source.alignment.items() if k != "size"}
    b = {k: v for k, v in target.alignment.items() if k != "size"}
    if a != b:
        raise ConfigError(f"{target.path} was aligned with {b}, the source {source.path} with {a}; prepare the "
                          f"target with the source's alignment settings", path=target.path)


class TargetRows(AUStoreDataset):
    """The scored rows of a target store, labels restricted to the shared AUs (source order)."""

    def __init__(self, target: Target):
        from ..store import open_store

        self.path = Path(target.info.path)
        self.protocol, self.fold, self.split = target.protocol, None, target.split
        with open_store(self.path) as store:
            self.rows = target.rows
            self.labels = np.ascontiguousarray(store.labels[target.rows][:, list(target.target_columns)], np.int8)
            self.row_subjects = np.asarray(store.subjects[target.rows]).astype(str)
        self.subjects = sorted(set(self.row_subjects.tolist()))
        self.aus = target.aus
        self.limited = False
        self._store, self._pid = None, None


def cross_row_dir(run: RunContext, k: int, target: Target) -> Path:
    return run.run_dir(k).parent / target.name / f"fold{k}"


def score_target(run: RunContext, k: int, target: Target, source_row: ResultRow) -> ResultRow:
    """The cross-dataset row of fold `k` on `target`, from the fold's recorded detector and thresholds."""
    from ..metrics import evaluate
    from ..models.detector import load_detector
    from ..runs.rundir import DETECTOR_NAME, save_predictions, write_config
    from .train import predict

    t0 = time.perf_counter()
    detector = load_detector(source_row.detector or run.run_dir(k) / DETECTOR_NAME, map_location=run.device)
    detector = detector.to(run.device)
    if list(detector.aus) != list(run.aus):
        raise ConfigError(f"{source_row.detector} scores AUs {detector.aus}, not the run's {run.aus}; rerun fold {k}")
    data = TargetRows(target)
    loader = make_loader(data, run.cfg.batch_size, workers=run.cfg.workers)
    probs, labels, rows = predict(detector, loader, detector.preprocess.to(run.device), run.device)
    probs = probs[:, list(target.source_columns)]
    thresholds = [float(source_row.thresholds[i]) for i in target.source_columns]
    scores = evaluate(probs, labels, list(target.aus), thresholds)
    folder = cross_row_dir(run, k, target)
    folder.mkdir(parents=True, exist_ok=True)
    subjects = data.row_subjects[np.searchsorted(data.rows, rows)]
    pred_path, sha = save_predictions(folder, {"test": (probs, labels, rows)}, {"test": subjects},
                                      list(target.aus), thresholds)
    write_config(folder, run.cfg.to_dict(), fold=k, config_hash=run.config_hash,
                 source_store_identity=run.store.identity, source_protocol=run.protocol.id,
                 target_store=target.info.path, target_store_identity=target.info.identity,
                 target_protocol=target.protocol.id, target_protocol_hash=target.protocol.hash,
                 target_label_rule={"kind": target.protocol.label.kind,
                                    "positive_min": target.protocol.label.positive_min},
                 shared_aus=list(target.aus), test_split=target.split, detector=str(source_row.detector))
    row = make_row(run, k, t0, status="ok", f1=[float(x) for x in scores.f1],
                   accuracy=[float(x) for x in scores.accuracy], f1_mean=float(scores.f1_mean),
                   accuracy_mean=float(scores.accuracy_mean), best_epoch=source_row.best_epoch,
                   val_f1_mean=source_row.val_f1_mean, n_train=source_row.n_train, n_val=source_row.n_val,
                   n_test=len(rows), thresholds=thresholds, predictions=str(pred_path), predictions_sha256=sha,
                   detector=source_row.detector)
    return as_cross(run, target, row, folder.parent)


def as_cross(run: RunContext, target: Target, row: ResultRow, run_dir: Path) -> ResultRow:
    """A row of the run made into the row of its target: the target's identity in the store
    columns, the source's in `source_*`, the shared AUs."""
    t = target.info
    return replace(row, dataset=t.dataset, protocol=target.protocol.id, protocol_hash=target.protocol.hash,
                   store=t.path, store_checksum=t.identity, aus=list(target.aus), run_dir=str(run_dir),
                   synthetic=run.store.synthetic or t.synthetic,
                   label_noise=t.label_noise if t.synthetic else run.store.label_noise,
                   source_dataset=run.store.dataset, source_protocol=run.protocol.id,
                   source_protocol_hash=run.protocol.hash, source_store=run.store.path,
                   source_store_checksum=run.store.identity, test_split=target.split)


def score_target_safely(run: RunContext, k: int, target: Target, source_row: ResultRow) -> ResultRow:
    """`score_target`, or an error row on the target's board (the other targets go on)."""

    t0 = time.perf_counter()
    try:
        return score_target(run, k, target, source_row)
    except AustackError as e:
        message = str(e)
    except Exception as e:  # as for a fold: the other targets go on, the message stays on record
        run.console.print_exception(max_frames=4)
        message = f"{type(e).__name__}: {e}"
    run.console.print(f"[red]fold {k} on {target.info.path} failed:[/red] {message}")
    row = as_cross(run, target, error_row(run, k, message, t0), cross_row_dir(run, k, target).parent)
    return replace(row, f1=[], accuracy=[])


def describe(target: Target) -> str:
    split = "the whole store" if target.split == ALL else f"{target.protocol.id} {target.split} test subjects"
    return (f"{target.info.dataset} {target.info.path}: AUs {' '.join(map(str, target.aus))}, {split} "
            f"({len(target.rows)} frames)")


__all__ = ["MIN_SHARED_AUS", "Target", "check_shared", "open_targets", "score_target", "shared_aus"]
