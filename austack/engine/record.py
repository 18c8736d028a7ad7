"""`run_and_record`: run a recipe and write its rows into the results database, fold by fold.

The one path from a `BenchConfig` to recorded results; `austack bench`, `austack demo` and
scripts call it. The database is opened (and so proven writable) before any training; each
fold's row is written as soon as the fold ends, so a crash later loses nothing already
measured; and a fold already recorded for the same config hash, store identity and seed is
not run again: its recorded row is returned instead. With `--test-data`, each fold's detector is
then scored on every target (`cross`), one more row per target, recorded the same way.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from ..errors import ConfigError, ResultsError
from ..results.schema import ResultRow
from ..runs.config import BenchConfig
from . import ddp
from .bench import print_run, run_fold_safely
from .cross import describe
from .events import BenchListener
from .preflight import open_run


@dataclass
class BenchOutcome:
    rows: list[ResultRow]                  # one per fold, in fold order (reused ones included)
    ids: list[int]                         # their row ids in the database
    reused: list[int] = field(default_factory=list)   # folds found already recorded
    db: Path | None = None
    cross: list[ResultRow] = field(default_factory=list)   # cross-dataset rows (--test-data), fold by target
    cross_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> list[ResultRow]:
        return [r for r in self.rows if r.status == "ok"]

    def summary(self):
        """Mean and spread over the folds that finished (`metrics.FoldSummary`), or None."""
        from ..metrics import fold_summary
        from ..results.schema import scores_of

        return fold_summary([scores_of(r) for r in self.ok]) if self.ok else None


def run_and_record(cfg: BenchConfig, *, console: Console | None = None,
                   progress: BenchListener | None = None) -> BenchOutcome:
    with cpu_threads(cfg.threads):
        return _run_and_record(cfg, console, progress)


@contextmanager
def cpu_threads(threads: int | None):
    """torch's intra-op CPU threads set to `threads` for the run (None: left as they are), then
    restored, so a study or a test that runs several configs in one process keeps its own."""
    import torch

    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _run_and_record(cfg: BenchConfig, console: Console | None, progress: BenchListener | None) -> BenchOutcome:
    run = open_run(cfg, console, progress)
    main = ddp.current().is_main
    db = _open_db(run.cfg.db) if main else None
    done = ddp.broadcast_object(db.recorded(run.config_hash, run.store.identity, run.cfg.seed) if main else {})
    cross_done = [db.recorded(run.config_hash, t.info.identity, run.cfg.seed, test_split=t.split,
                              source_store_checksum=run.store.identity) for t in run.targets] if main else []
    print_run(run)
    for t in run.targets:
        run.console.print(f"cross-dataset target: {describe(t)}", markup=False, highlight=False)
    outcome = BenchOutcome([], [], db=None if db is None else db.path)
    for k in run.cfg.folds:
        if k in done:
            run.console.print(f"fold {k}: already recorded as row {done[k]} (same config {run.config_hash}, "
                              f"store and seed); not run again")
            outcome.reused.append(k)
            row, row_id = (db.get(done[k]) if main else None), done[k]
        else:
            row = run_fold_safely(run, k)
            row_id, inserted = db.insert_once(row) if main else (-1, True)
            if not inserted:   # another process recorded this fold while it ran here
                run.console.print(f"fold {k}: recorded meanwhile as row {row_id} by another run; kept that row")
                outcome.reused.append(k)
                row = db.get(row_id)
        outcome.rows.append(row)
        outcome.ids.append(row_id)
        if run.targets and main:
            _score_targets(run, k, row, db, cross_done, outcome)
    if main:
        db.close()
    return outcome


def _score_targets(run, k: int, row: ResultRow, db, done: list[dict[int, int]], outcome: BenchOutcome) -> None:
    """Fold k's detector scored on each target: one row per target, recorded as it is made; a
    target already recorded for this fold is not scored again."""
    from .cross import score_target_safely

    if row.status != "ok":
        run.console.print(f"fold {k} failed, so it is not scored on the cross-dataset targets")
        return
    for target, recorded in zip(run.targets, done):
        if k in recorded:
            run.console.print(f"fold {k} on {target.info.dataset} ({target.split}): already recorded as row "
                              f"{recorded[k]}; not scored again")
            outcome.cross.append(db.get(recorded[k]))
            outcome.cross_ids.append(recorded[k])
            continue
        cross = score_target_safely(run, k, target, row)
        row_id, inserted = db.insert_once(cross)
        outcome.cross.append(cross if inserted else db.get(row_id))
        outcome.cross_ids.append(row_id)


def _open_db(path: str):
    from ..results.db import ResultsDB

    db = None
    try:
        db = ResultsDB(Path(path).expanduser())
        db.check_writable()
    except ResultsError:
        if db is not None:
            db.close()
        raise
    except OSError as e:
        raise ConfigError(f"cannot write the results database {path} ({e.strerror or e}); pass --db with a "
                          f"writable file", path=path) from None
    return db
