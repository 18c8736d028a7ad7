"""`prepare`: one raw distribution -> one aligned HDF5 store, resumable.

A plan (pass 1: every session's labels, no pixels) fixes the sessions and the totals. The job
stream then reads the sessions again in the reader's order and cuts each into chunks of at
most `chunk_frames` frames; `ordered_map` runs the chunks on the executor `open_executor`
chose (in-process, a local process pool, or any `concurrent.futures.Executor`, e.g. a
cluster's) with a bounded window,
and the ordered writer saves each result durably as it comes (`StoreWriter`), so memory stays
flat whatever the dataset size and a run killed at any instant resumes from what it saved.

Chunks are cut the same way whatever the executor, the landmark tracker restarts at each
chunk, and a chunk is kept on resume only if its inputs (`job_key`) are unchanged; so every
run of the same inputs writes the same bytes, resumed or not.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

from ..datasets.base import AnomalyReport
from ..errors import AustackError, StoreMismatchError
from ..progress import Progress
from ..store import ORIGIN, StoreSettings, StoreWriter
from .chunk import process_chunk
from .executors import Pool, WorkerLostError, open_executor, ordered_map
from .job import Job
from .options import PrepareOptions
from .plan import Plan, make_plan
from .shards import run_sharded
from .steps import PrepareReport, Step, StepWriter, job_maker, session_steps


def prepare(dataset: str, raw_dir: str | os.PathLike, out: str | os.PathLike, options: PrepareOptions | None = None,
            *, progress: Progress | None = None, executor: Executor | None = None, **settings) -> PrepareReport:
    """Align every frame of the raw distribution at `raw_dir` into the store `out`.

    `options` (or its fields as keywords, `settings`) say how. `landmarks`: "shipped" uses
    only the dataset's landmark files, "dlib" only detection, "auto" the shipped ones where a
    frame has them and dlib elsewhere. Frames without a face are kept (face=0) and reported;
    undecodable frames are reported with their file. `executor` runs the chunks (default:
    `workers` local processes, in-process for 1), or `dask` names a Dask cluster to run them
    on (`local[:N]` or a scheduler address); at most `window` (default 2 x workers) chunks
    are in flight, at most `running` (default all) of them unfinished: a cluster's executor
    runs with `running` = its workers (`ordered_map`). `shards`: each task writes a shard
    store of `shard_sessions` sessions into `OUT.h5.shards/` and `out` is copied from them, or
    with `virtual` made of virtual datasets over them (`shards`). `device` (a torch device,
    e.g. "cuda") decodes JPEG frames with shipped landmarks there and warps them in batches
    (`gpu`); the store records it as its `pixel_decoder`.
    """
    o = replace(options, **settings) if options is not None else PrepareOptions(**settings)
    with open_executor(o, executor) as pool:
        t0 = time.perf_counter()
        plan = make_plan(dataset, raw_dir, o)
        report = PrepareReport(Path(out).expanduser().resolve(), plan.settings.dataset)
        if not _write(plan, report, pool, progress, o):
            return _already_complete(report.out, plan.settings, report, t0)
    report.sessions, report.frames = len(plan.refs), sum(plan.counts)
    report.origins = Counter({name: report.origins[code] for name, code in ORIGIN.items() if report.origins[code]})
    report.seconds = time.perf_counter() - t0
    return report


def _write(plan: Plan, report: PrepareReport, pool: Pool, progress: Progress | None, o: PrepareOptions) -> bool:
    """Write the store, plain or sharded; False when `--resume` finds it complete already."""
    if o.shards:
        return run_sharded(plan, report, pool, progress, o)
    final = report.out
    if o.resume and final.exists() and not o.force and not _partial_exists(final):
        return False
    with StoreWriter(final, plan.settings, resume=o.resume, force=o.force) as writer:   # its lock released
        _run(plan, writer, report, pool, progress, job_maker(plan.job_template(o)), o.chunk_frames)
    return True


def _run(plan: Plan, writer: StoreWriter, report: PrepareReport, pool: Pool, progress: Progress | None,
         job: Callable[[list], Job], chunk_frames: int) -> None:
    """The plain run: every chunk on the executor, saved in order by one writer."""
    sink = StepWriter(writer, plan.refs, sum(plan.counts), report, plan.settings.landmark_source, progress)
    for step, result in ordered_map(pool.executor, process_chunk, _steps(plan, writer, job, chunk_frames),
                                    pool.window, _naming_errors(plan, writer.path), running=pool.running):
        sink.step(step, result)
    report.anomalies.extend(plan.reader_report)
    writer.finish(source=plan.source, anomalies=list(plan.reader_report), sessions=len(plan.refs),
                  synthetic=plan.synthetic)


def _steps(plan: Plan, writer: StoreWriter, job: Callable[[list], Job], chunk_frames: int
           ) -> Iterator[tuple[Step, Job | None]]:
    """(step, job to run or None) for every chunk of every session, in write order."""
    throwaway = AnomalyReport()  # the reader's anomalies were collected in pass 1
    for i, ref in enumerate(plan.refs):
        yield from session_steps(i, ref, plan.reader.read_session(ref, throwaway).frames, writer, job, chunk_frames)


def _naming_errors(plan: Plan, final: Path) -> Callable[[Step, Exception], Exception]:
    """An executor's own failure (a dead worker, a broken pool) as one line naming the chunk."""
    def name(step: Step, e: Exception) -> Exception:
        if isinstance(e, AustackError):
            return e
        ref = plan.refs[step.session]
        why = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        return WorkerLostError(f"chunk {step.chunk} of session {ref.subject}/{ref.session} failed on the executor "
                               f"({why}); the chunks saved so far stay: rerun with --resume to complete {final}",
                               path=final)
    return name


def _partial_exists(final: Path) -> bool:
    return final.with_name(final.name + ".partial").exists()


def _already_complete(final: Path, settings: StoreSettings, report: PrepareReport, t0: float) -> PrepareReport:
    """`--resume` on a finished store: nothing to do if it was made with the same settings."""
    from ..store import open_store, partial_path
    from ..store._parts import sweep_leftovers

    sweep_leftovers(partial_path(final))   # what a run killed while removing its parts left
    with open_store(final) as s:
        diffs = s.settings.differences(settings)
        if diffs:
            raise StoreMismatchError(f"{final} is complete but was made with other settings ({'; '.join(diffs)}); "
                                     "rerun with --force to rebuild it", path=final)
        report.sessions, report.frames = len(s.sessions), len(s)
        report.resumed_sessions = report.sessions
        report.anomalies.items.extend(s.anomalies())
    report.already_complete = True
    report.seconds = time.perf_counter() - t0
    return report

