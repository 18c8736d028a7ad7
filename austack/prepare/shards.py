"""`prepare --shards`: each task writes a whole shard store for a group of sessions.

For data that should not travel to one writer: the client reads the labels and sends each
task the frame lists of a few sessions (`ShardJob`); the worker decodes, aligns and encodes
them and writes `OUT.h5.shards/shard-NNNNN.h5` itself (through its own partial folder, so a
killed task resumes at chunk granularity too), and sends back only counts and anomalies.
The final `OUT.h5` is then copied from the shards (the bytes of a plain run) or, with
`--virtual`, written as HDF5 virtual datasets over them (`austack.store._shards`).

A shard is kept on resume when its file is finished and records the key of its inputs
(`shard_key`: the settings and each session's chunk keys); anything else is computed again.
Two tries of one task (a scheduler that reran it while the first still ran) take turns on a
lock file beside the shard, and the second finds the first's shard done.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import h5py

from ..datasets.base import Anomaly, AnomalyReport, FrameRecord, SessionRef
from ..errors import AustackError, StoreError, StoreExistsError
from ..progress import Progress
from ..store import StoreSettings, StoreWriter
from ..store._parts import write_error
from ..store._provenance import root_attrs
from ..store._shards import assemble_shards, write_virtual
from .chunk import process_chunk
from .executors import Pool, WorkerLostError, ordered_map
from .job import Job, job_key
from .options import PrepareOptions
from .steps import PrepareReport, StepWriter, job_maker, session_steps

SHARDS_SUFFIX = ".shards"
KEY_VERSION = 1


@dataclass(frozen=True)
class ShardJob:
    """One shard's work, everything a worker needs (picklable): where to write, the key to
    record, and each session's frames."""

    index: int
    path: str
    key: str
    settings: StoreSettings
    template: Job                      # the chunk job with no frames
    chunk_frames: int
    sessions: tuple[tuple[SessionRef, list[FrameRecord]], ...]


@dataclass
class ShardResult:
    index: int
    written_frames: int = 0
    faces: int = 0
    origins: Counter = field(default_factory=Counter)     # by origin code
    anomalies: list[Anomaly] = field(default_factory=list)
    resumed_sessions: int = 0
    seconds: float = 0.0


def shards_path(final: Path) -> Path:
    return final.with_name(final.name + SHARDS_SUFFIX)


def shard_path(folder: Path, index: int) -> Path:
    return folder / f"shard-{index:05d}.h5"


def shard_key(settings: StoreSettings, chunk_frames: int, sessions: list[tuple[str, str, tuple[str, ...]]]) -> str:
    head = ["austack-shard", KEY_VERSION, chunk_frames, asdict(settings), [list(s) for s in sessions]]
    return hashlib.sha256(json.dumps(head, sort_keys=True, default=list).encode()).hexdigest()


def recorded_key(path: Path) -> str | None:
    """The input key a finished shard file records; None if absent, unfinished or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            if not f.attrs.get("complete"):
                return None
            return json.loads(f.attrs["source"]).get("shard_key")
    except (OSError, KeyError, ValueError):
        return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One try of a shard's task at a time (the lock ends with its process, however it ends)."""
    with open(path.with_name(f".{path.name}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def write_shard(sj: ShardJob) -> ShardResult:
    """Compute and write one shard (runs on a worker); kept chunks of a killed try are reused."""
    t0, path = time.perf_counter(), Path(sj.path)
    refs = [ref for ref, _ in sj.sessions]
    report = PrepareReport(path, sj.settings.dataset)
    with _locked(path):
        if recorded_key(path) == sj.key:    # another try of this task finished it
            return ShardResult(sj.index, resumed_sessions=len(refs), seconds=time.perf_counter() - t0)
        with StoreWriter(path, sj.settings, resume=True) as writer:   # its lock released however it ends
            sink = StepWriter(writer, refs, sum(len(f) for _, f in sj.sessions), report, sj.template.landmarks, None)
            make = job_maker(sj.template)
            for i, (ref, frames) in enumerate(sj.sessions):
                for step, job in session_steps(i, ref, frames, writer, make, sj.chunk_frames):
                    sink.step(step, None if job is None else process_chunk(job))
            writer.finish(source={"shard": sj.index, "shard_key": sj.key}, sessions=len(refs))
    return ShardResult(sj.index, report.written_frames, report.faces, report.origins, report.anomalies.items,
                       report.resumed_sessions, time.perf_counter() - t0)


def _groups(n: int, k: int) -> list[range]:
    return [range(a, min(n, a + k)) for a in range(0, n, k)]


def _items(plan, folder: Path, template: Job, chunk_frames: int, k: int):
    """(tag, ShardJob or None when the shard is kept) for every shard, in order."""
    throwaway, make = AnomalyReport(), job_maker(template)
    for g, group in enumerate(_groups(len(plan.refs), k)):
        sessions = tuple((plan.refs[i], plan.reader.read_session(plan.refs[i], throwaway).frames) for i in group)
        keys = [(r.subject, r.session, tuple(job_key(make(f[a:a + chunk_frames]))
                                             for a in range(0, len(f), chunk_frames))) for r, f in sessions]
        key, path = shard_key(plan.settings, chunk_frames, keys), shard_path(folder, g)
        tag = (g, [r for r, _ in sessions], sum(len(f) for _, f in sessions))
        kept = recorded_key(path) == key
        yield tag, None if kept else ShardJob(g, str(path), key, plan.settings, template, chunk_frames, sessions)


def _naming(final: Path) -> Callable[[tuple, Exception], Exception]:
    def name(tag: tuple, e: Exception) -> Exception:
        if isinstance(e, AustackError):
            return e
        refs = tag[1]
        which = ", ".join(f"{r.subject}/{r.session}" for r in refs)
        why = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        return WorkerLostError(f"shard {tag[0]} (sessions {which}) failed on the executor ({why}); the shards "
                               f"written so far stay: rerun with --resume to complete {final}", path=final)
    return name


def run_sharded(plan, report: PrepareReport, pool: Pool, progress: Progress | None, opts: PrepareOptions) -> bool:
    """Write every shard that is not kept, then the final store; False when `--resume` found
    the final store already complete (nothing done)."""
    final, folder = report.out, shards_path(report.out)
    if _prepared(final, folder, plan.settings, opts):
        return False
    _sweep_aside(final, folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups = _groups(len(plan.refs), opts.shard_sessions)
    done, total = 0, sum(plan.counts)
    items = _items(plan, folder, plan.job_template(opts), opts.chunk_frames, opts.shard_sessions)
    for tag, res in ordered_map(pool.executor, write_shard, items, pool.window, _naming(final),
                                running=pool.running):
        done += tag[2]
        if res is None:
            report.resumed_sessions += len(tag[1])
        else:
            report.written_frames += res.written_frames
            report.faces += res.faces
            report.origins.update(res.origins)
            report.anomalies.items.extend(res.anomalies)
            report.resumed_sessions += res.resumed_sessions
        if progress:
            progress(done, total, tag[1][-1].subject)
    report.anomalies.extend(plan.reader_report)
    _finish(plan, final, folder, [shard_path(folder, g) for g in range(len(groups))], opts.chunk_frames,
            opts.virtual)
    return True


def _prepared(final: Path, folder: Path, settings: StoreSettings, opts: PrepareOptions) -> bool:
    """Refuse to overwrite; clear for --force; True when --resume finds the store done."""
    if opts.force:
        _remove(folder)
        return False
    if final.exists() and not opts.resume:
        raise StoreExistsError(f"{final} already exists; pass --force to rebuild it", path=final)
    if folder.exists() and not opts.resume and not final.exists():
        raise StoreExistsError(f"{folder} is left from an interrupted run; rerun with --resume to continue it "
                               "or --force to start over", path=folder)
    if not (opts.resume and final.exists()) or (folder.exists() and not opts.virtual):
        return False       # a copied store whose folder is still there: assemble again, then tidy
    from ..store import open_store

    try:
        with open_store(final) as s:
            return not s.settings.differences(settings) and bool(s.shard_files) == opts.virtual
    except StoreError:     # e.g. a virtual store with a shard missing: compute it again
        return False


def _finish(plan, final: Path, folder: Path, paths: list[Path], chunk_frames: int, virtual: bool) -> None:
    attrs, anomalies = root_attrs(plan.source, plan.synthetic), list(plan.reader_report)
    target = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        if virtual:
            _sweep(folder, len(paths))
            write_virtual(plan.settings, paths, target, attrs, anomalies)
        else:
            assemble_shards(plan.settings, paths, target, attrs, anomalies, chunk_frames)
        os.replace(target, final)
    except OSError as e:
        raise write_error(final, e) from None
    finally:
        target.unlink(missing_ok=True)
    if not virtual:
        _remove(folder)


def _sweep(folder: Path, n: int) -> None:
    """Shards past the last one (an earlier run's grouping) and their partial folders."""
    for p in folder.glob("shard-*.h5*"):
        stem = p.name.split(".")[0]
        if stem[6:].isdigit() and int(stem[6:]) >= n:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


def _sweep_aside(final: Path, folder: Path) -> None:
    """What a killed run left beside the store: a torn final file, a half-deleted folder."""
    for stale in final.parent.glob(f".{final.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    for stale in final.parent.glob(f".{folder.name}.*.old"):
        shutil.rmtree(stale, ignore_errors=True)


def _remove(folder: Path) -> None:
    """Renamed away, then deleted: a kill mid-delete leaves no half shard folder behind."""
    if not folder.exists():
        return
    gone = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    os.rename(folder, gone)
    shutil.rmtree(gone, ignore_errors=True)
