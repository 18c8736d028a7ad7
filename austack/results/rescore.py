"""Numbers re-derived from stored predictions, never from retraining.

`rescore(run_dir)`: every fold's metrics recomputed from its `predictions.npz`, with a subject
bootstrap interval. `interval_for_rows(rows)`: the interval of a leaderboard row (one config on
one store, over its folds and seeds). `compare(db, a, b)`: the paired difference of two configs
(or two rows) on the same store and folds.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import ResultsError
from ..fileio import sha256_file
from .schema import ResultRow
from .stats import N_BOOT, Bootstrap, PairedComparison, bootstrap, fold_counts_from_files, paired_bootstrap

PREDICTIONS = "predictions.npz"


@dataclass
class FoldRescore:
    fold: int
    path: Path
    f1: list[float]
    f1_mean: float
    thresholds: list[float]


@dataclass
class Rescore:
    aus: list[int]
    folds: list[FoldRescore]
    interval: Bootstrap


def _fold_dirs(run_dir: Path) -> list[Path]:
    if (run_dir / PREDICTIONS).is_file():
        return [run_dir]
    dirs = sorted(p.parent for p in run_dir.glob(f"fold*/{PREDICTIONS}"))
    if not dirs:
        raise ResultsError(f"no {PREDICTIONS} in {run_dir} or its fold*/ folders; give the run dir that "
                           f"`austack bench` wrote (its path is in each result row's run_dir)", path=run_dir)
    return dirs


def recorded_digests(db_path: str | Path | None) -> dict[str, str]:
    """predictions file -> the sha256 recorded with its row, from the results database at
    `db_path` ({} when there is none: nothing recorded to compare)."""
    if db_path is None or not Path(db_path).expanduser().is_file():
        return {}
    from .db import ResultsDB

    with ResultsDB(Path(db_path).expanduser()) as db:
        return {str(Path(r.predictions).resolve()): r.predictions_sha256
                for r in db.query(status="ok", include_noncomparable=True) if r.predictions and r.predictions_sha256}


def rescore(run_dir: str | Path, *, n_boot: int = N_BOOT, seed: int = 0, db: str | Path | None = None) -> Rescore:
    """Recompute every fold's test F1 from its stored predictions and the thresholds it applied;
    each file's sha256 is checked against the one recorded in the results database `db`."""
    from ..engine.rundir import load_predictions
    from ..metrics import evaluate

    folds, digests = [], recorded_digests(db)
    for d in _fold_dirs(Path(run_dir).expanduser().resolve()):
        p = load_predictions(d / PREDICTIONS, sha256=digests.get(str(d / PREDICTIONS)))
        if "test_subjects" not in p:
            raise ResultsError(f"{d / PREDICTIONS} holds no test subjects (written by an older austack); rerun "
                               "the fold", path=d / PREDICTIONS)
        aus = [int(a) for a in p["aus"]]
        scores = evaluate(p["test_probs"], p["test_labels"], aus, p["thresholds"].tolist())
        k = int(d.name[4:]) if d.name.startswith("fold") and d.name[4:].isdigit() else len(folds) + 1
        folds.append(FoldRescore(k, d / PREDICTIONS, [float(x) for x in scores.f1], float(scores.f1_mean),
                                 p["thresholds"].tolist()))
    counts = fold_counts_from_files({f.fold: [f.path] for f in folds})
    return Rescore(aus, folds, bootstrap(counts, aus, n_boot=n_boot, seed=seed))


def _files_by_fold(rows: Sequence[ResultRow]) -> dict[int, list[Path]]:
    """Each ok row's predictions file, checked against the sha256 recorded with it."""
    by_fold: dict[int, list[Path]] = defaultdict(list)
    for r in rows:
        if r.status != "ok":
            continue
        if not r.predictions or not Path(r.predictions).is_file():
            raise ResultsError(f"fold {r.fold} of {r.backbone}+{r.loss} (config {r.config_hash or '?'}) has no "
                               f"stored predictions at {r.predictions}; intervals need them")
        if r.predictions_sha256 and sha256_file(r.predictions) != r.predictions_sha256:
            raise ResultsError(f"{r.predictions} changed since it was recorded (sha256 differs); rerun the fold",
                               path=r.predictions)
        by_fold[r.fold].append(Path(r.predictions))
    return dict(by_fold)


def interval_for_rows(rows: Sequence[ResultRow], *, n_boot: int = N_BOOT, seed: int = 0) -> Bootstrap:
    """The subject-bootstrap interval of one leaderboard row: rows of one config on one store."""
    stores = {r.store_checksum for r in rows}
    if len(stores) != 1:
        raise ResultsError("an interval pools the folds of one store; these rows come from several")
    return bootstrap(fold_counts_from_files(_files_by_fold(rows)), rows[0].aus, n_boot=n_boot, seed=seed)


def resolve(db, key: str) -> list[ResultRow]:
    """A row id ("17") or a config hash (or a unique prefix of one) -> the ok rows it names."""
    if key.isdigit():
        return [db.get(int(key))]
    rows = [r for r in db.query(status="ok", include_noncomparable=True) if r.config_hash.startswith(key)]
    hashes = {r.config_hash for r in rows}
    if not rows:
        raise ResultsError(f"no recorded row has id or config hash {key!r} (`austack leaderboard --format json` "
                           f"lists config hashes)")
    if len(hashes) > 1:
        raise ResultsError(f"{key!r} is the start of several config hashes ({', '.join(sorted(hashes))}); "
                           f"give more of it")
    return rows


def compare(db, a: str, b: str, *, n_boot: int = N_BOOT, seed: int = 0) -> PairedComparison:
    rows_a, rows_b = resolve(db, a), resolve(db, b)
    stores = {r.store_checksum for r in rows_a + rows_b}
    if len(stores) != 1:
        raise ResultsError(f"{a} and {b} were measured on different stores (identities "
                           f"{', '.join(s[:12] for s in sorted(stores))}); a paired comparison needs one store")
    files_a, files_b = _files_by_fold(rows_a), _files_by_fold(rows_b)
    if sorted(files_a) != sorted(files_b):
        raise ResultsError(f"{a} covers folds {sorted(files_a)} and {b} folds {sorted(files_b)}; run the "
                           f"missing folds first")
    return paired_bootstrap(fold_counts_from_files(files_a), fold_counts_from_files(files_b), n_boot=n_boot,
                            seed=seed)
