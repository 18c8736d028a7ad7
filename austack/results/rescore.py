"""Numbers re-derived from stored predictions, never from retraining.

`rescore(run_dir)`: every fold's metrics recomputed from its `predictions.npz`, with a subject
bootstrap interval. `interval_for_rows(rows)`: the interval of a leaderboard row (one config on
one store, over its folds and seeds). `compare(db, a, b)`: the paired difference of two configs
(or two rows) on the same store and folds. A cross-dataset row (docs/cross-dataset.md) stores
predictions on its target's subjects, so all three work on it unchanged; a config scored on
several stores is compared on the one both were scored on (`on` picks one where there are more).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import ResultsError
from ..fileio import sha256_file
from ..runs.rundir import PREDICTIONS_NAME, fold_dirs
from .schema import ResultRow
from .stats import N_BOOT, Bootstrap, PairedComparison, bootstrap, fold_counts_from_files, paired_bootstrap



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


def _fold_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    dirs = fold_dirs(run_dir, PREDICTIONS_NAME)
    if not dirs:
        raise ResultsError(f"no {PREDICTIONS_NAME} in {run_dir} or its fold*/ folders; give the run dir that "
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
    from ..metrics import evaluate
    from ..runs.rundir import load_predictions

    folds, digests = [], recorded_digests(db)
    for k, d in _fold_dirs(Path(run_dir).expanduser().resolve()):
        path = d / PREDICTIONS_NAME
        p = load_predictions(path, sha256=digests.get(str(path)))
        if "test_subjects" not in p:
            raise ResultsError(f"{path} holds no test subjects (written by an older austack); rerun "
                               "the fold", path=path)
        aus = [int(a) for a in p["aus"]]
        scores = evaluate(p["test_probs"], p["test_labels"], aus, p["thresholds"].tolist())
        folds.append(FoldRescore(k, d / PREDICTIONS_NAME, [float(x) for x in scores.f1], float(scores.f1_mean),
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
    """"#17" -> row 17; anything else is a config hash or a unique prefix of one (an all-digit
    prefix such as "7031" is a hash prefix too) -> the ok rows it names."""
    key = key.strip()
    if key.startswith("#"):
        if not key[1:].isdigit():
            raise ResultsError(f"{key!r} is not a row id; write #N with N a row id (`austack leaderboard "
                               f"--format json` lists config hashes)")
        return [db.get(int(key[1:]))]
    rows = [r for r in db.query(status="ok", include_noncomparable=True) if key and r.config_hash.startswith(key)]
    hashes = {r.config_hash for r in rows}
    if not rows:
        hint = f"; for row {key} write #{key}" if key.isdigit() else ""
        raise ResultsError(f"no recorded result has a config hash starting {key!r}{hint} (`austack leaderboard "
                           f"--format json` lists config hashes)")
    if len(hashes) > 1:
        raise ResultsError(f"{key!r} is the start of several config hashes ({', '.join(sorted(hashes))}); "
                           f"give more of it")
    return rows


def evaluation(row: ResultRow) -> tuple[str, str, str]:
    """What a row's number was measured on: its scored store, and for a cross-dataset row the
    source store that trained it and the target split."""
    return row.store_checksum, row.source_store_checksum, row.test_split


def evaluation_name(row: ResultRow) -> str:
    """`disfa` for a row scored on its own store's test fold; `bp4d->disfa:all` across datasets."""
    return f"{row.source_dataset}->{row.dataset}:{row.test_split}" if row.cross else row.dataset


def _on_common(rows_a: list[ResultRow], rows_b: list[ResultRow], a: str, b: str, on: str | None):
    """The rows of A and B on the one evaluation both have (and that `on` names, when given)."""
    groups_a, groups_b = defaultdict(list), defaultdict(list)
    for rows, groups in ((rows_a, groups_a), (rows_b, groups_b)):
        for r in rows:
            groups[evaluation(r)].append(r)
    common = [e for e in groups_a if e in groups_b]
    names = {e: evaluation_name(groups_a[e][0]) for e in common}
    if on is not None:
        common = [e for e in common if on in (names[e], groups_a[e][0].dataset)]
        if not common:
            raise ResultsError(f"{a} and {b} were not both scored on {on!r}; both were on: "
                               f"{', '.join(sorted(names.values())) or 'nothing in common'}")
    if len(common) > 1:
        raise ResultsError(f"{a} and {b} were both scored on {', '.join(sorted(names[e] for e in common))}; "
                           f"pick one with --on NAME")
    if not common:
        return rows_a, rows_b
    return groups_a[common[0]], groups_b[common[0]]


def compare(db, a: str, b: str, *, n_boot: int = N_BOOT, seed: int = 0, on: str | None = None) -> PairedComparison:
    """A minus B, paired on the test subjects; `on` names the evaluation (`evaluation_name`,
    or a dataset) where A and B were both scored on several stores or target splits."""
    rows_a, rows_b = _on_common(resolve(db, a), resolve(db, b), a, b, on)
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
