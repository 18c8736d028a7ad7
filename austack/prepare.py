"""`prepare`: one raw distribution -> one aligned HDF5 store, resumable.

A plan (pass 1: every session's labels, no pixels) fixes the sessions and the totals. The job
stream then reads the sessions again in the reader's order and cuts each into chunks of at
most `chunk_frames` frames; `ordered_map` runs the chunks on an executor (in-process, a local
process pool, or any `concurrent.futures.Executor`, e.g. a cluster's) with a bounded window,
and the ordered writer saves each result durably as it comes (`StoreWriter`), so memory stays
flat whatever the dataset size and a run killed at any instant resumes from what it saved.

Chunks are cut the same way whatever the executor, the landmark tracker restarts at each
chunk, and a chunk is kept on resume only if its inputs (`job_key`) are unchanged; so every
run of the same inputs writes the same bytes, resumed or not.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .align import alignment_params
from .datasets.base import Anomaly, AnomalyReport, FrameRecord, SessionRef, create_reader
from .errors import AustackError, ConfigError, StoreMismatchError
from .executors import WorkerLostError, local_executor, ordered_map
from .prepare_chunk import ChunkResult, Job, job_key, process_chunk
from .protocols import load_protocol
from .store import ORIGIN, StoreSettings, StoreWriter
from .store._provenance import synth_provenance

LANDMARK_MODES = ("auto", "shipped", "dlib")
CHUNK_FRAMES = 256
NO_FACE_LISTED = 20  # frame numbers spelled out per session in a no_face anomaly

Progress = Callable[[int, int, str], None]   # (frames written, frames in total, current subject)


@dataclass
class PrepareReport:
    out: Path
    dataset: str
    sessions: int = 0              # sessions in the store
    frames: int = 0                # rows in the store
    resumed_sessions: int = 0      # sessions found whole in the partial folder and kept
    written_frames: int = 0        # rows computed by this run
    faces: int = 0                 # of the rows computed by this run, those with an aligned face
    origins: Counter = field(default_factory=Counter)   # landmark origin of the rows computed
    anomalies: AnomalyReport = field(default_factory=AnomalyReport)
    seconds: float = 0.0
    already_complete: bool = False

    @property
    def no_face(self) -> int:
        return self.written_frames - self.faces

    @property
    def frames_per_s(self) -> float:
        return self.written_frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Plan:
    """What pass 1 learnt: the sessions in write order, their sizes, and the store settings."""

    reader: object
    refs: list[SessionRef]
    counts: list[int]
    settings: StoreSettings
    reader_report: AnomalyReport
    source: dict
    synthetic: dict | None


@dataclass(frozen=True)
class Step:
    """One chunk in write order (`key` None for a session with no chunk to write); `end` is set
    on a session's last step and names the session for its marker."""

    session: int
    chunk: int
    key: str | None
    frames: int                     # frames in this step (a whole kept session: all of them)
    kept: dict | None = None        # the saved chunk's meta, when it is reused
    end: "SessionEnd | None" = None


@dataclass(frozen=True)
class SessionEnd:
    ref: SessionRef
    keys: tuple[str, ...]
    frames: int
    where: str                      # folder or video named by a no_face anomaly
    kept: bool = False              # the whole session was found saved and unchanged


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a label file; of a folder, over its files' names and bytes in sorted order."""
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p] if p.is_file() else []
    for q in files:
        if p.is_dir():
            h.update(str(q.relative_to(p)).encode() + b"\0")
        with open(q, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest() if files else ""


def _no_face_anomaly(end: SessionEnd, no_face: list[int], mode: str) -> Anomaly:
    shown = ", ".join(map(str, no_face[:NO_FACE_LISTED])) + (", ..." if len(no_face) > NO_FACE_LISTED else "")
    return Anomaly("no_face", end.where, f"{end.ref.subject}/{end.ref.session}: {len(no_face)} of {end.frames} "
                   f"frames have no usable landmarks (--landmarks {mode}), kept with face=0: frames {shown}",
                   len(no_face))


def _where(frames: list[FrameRecord]) -> str:
    if not frames:
        return ""
    src = frames[0].source
    return os.path.dirname(src.path) if src.kind == "image" else src.path


def make_plan(dataset: str, raw_dir, *, landmarks: str, size: int, box_enlarge: float, store: str,
              reader_options: dict | None, detect_max_side: int, chunk_frames: int) -> Plan:
    """Pass 1: labels only, for the totals, the reader's anomalies and the store settings."""
    reader = create_reader(dataset, raw_dir, **(reader_options or {}))
    protocol = load_protocol(reader.protocol)
    refs = reader.sessions()
    report, counts, with_intensities = AnomalyReport(), [], False
    for ref in refs:
        rec = reader.read_session(ref, report)
        counts.append(len(rec.frames))
        with_intensities |= any(f.intensities is not None for f in rec.frames)
    settings = StoreSettings(dataset=reader.dataset, aus=protocol.aus, protocol=protocol.id,
                             protocol_hash=protocol.hash, alignment=alignment_params(size, box_enlarge),
                             landmark_source=landmarks, image_encoding=store, with_intensities=with_intensities)
    source = {"root": str(reader.root), "reader_options": reader.options, "sessions": len(refs),
              "frames": sum(counts), "landmarks": landmarks, "detect_max_side": detect_max_side,
              "chunk_frames": chunk_frames, "protocol_file": protocol.path}
    return Plan(reader, refs, counts, settings, report, source, synth_provenance(reader.root))


def _steps(plan: Plan, writer: StoreWriter, job: Callable[[list], Job], chunk_frames: int
           ) -> Iterator[tuple[Step, Job | None]]:
    """(step, job to run or None) for every chunk of every session, in write order."""
    throwaway = AnomalyReport()  # the reader's anomalies were collected in pass 1
    for i, ref in enumerate(plan.refs):
        frames = plan.reader.read_session(ref, throwaway).frames
        jobs = [job(frames[a:a + chunk_frames]) for a in range(0, len(frames), chunk_frames)]
        keys = tuple(job_key(j) for j in jobs)
        end = SessionEnd(ref, keys, len(frames), _where(frames))
        if _session_kept(writer, i, ref, keys):
            yield Step(i, 0, None, len(frames), end=SessionEnd(ref, keys, len(frames), end.where, True)), None
            continue
        if not jobs:
            yield Step(i, 0, None, 0, end=end), None
        for k, (jb, key) in enumerate(zip(jobs, keys)):
            meta = writer.chunk_meta(i, k)
            kept = meta if meta is not None and meta["key"] == key else None
            yield Step(i, k, key, len(jb.frames), kept, end if k == len(jobs) - 1 else None), None if kept else jb


def _session_kept(writer: StoreWriter, i: int, ref: SessionRef, keys: tuple[str, ...]) -> bool:
    """Whether session `i` is saved whole, for these inputs, with every chunk file readable."""
    marker = writer.session_marker(i)
    if not marker or (marker["subject"], marker["session"], tuple(marker["chunks"])) != (ref.subject, ref.session,
                                                                                         keys):
        return False
    metas = (writer.chunk_meta(i, k) for k in range(len(keys)))
    return all(m is not None and m["key"] == key for m, key in zip(metas, keys))


class _Writer:
    """The ordered writer: saves each chunk result, closes sessions, counts for the report."""

    def __init__(self, writer: StoreWriter, plan: Plan, report: PrepareReport, mode: str,
                 progress: Progress | None):
        self.w, self.plan, self.report, self.mode, self.progress = writer, plan, report, mode, progress
        self.done = 0                   # frames saved, this run or before
        self.total = sum(plan.counts)
        self.no_face: list[int] = []    # of the current session

    def step(self, step: Step, result: ChunkResult | None) -> None:
        r = self.report
        if step.kept is not None:
            self.no_face += step.kept["no_face"]
        elif result is not None:
            rows = result.rows
            self.w.write_chunk(step.session, step.chunk, rows, key=step.key, no_face=result.no_face)
            self.no_face += result.no_face
            r.written_frames += len(rows)
            r.faces += int(rows.face.sum())
            r.origins.update(rows.landmark_origin.tolist())
            r.anomalies.items.extend(rows.anomalies)
        self.done += step.frames
        if step.end is not None:
            self._end(step.session, step.end)
        if self.progress:
            self.progress(self.done, self.total, self.plan.refs[step.session].subject)

    def _end(self, index: int, end: SessionEnd) -> None:
        if end.kept:
            self.report.resumed_sessions += 1
        else:
            extra = [_no_face_anomaly(end, self.no_face, self.mode)] if self.no_face else []
            self.report.anomalies.items.extend(extra)
            self.w.write_session(index, end.ref.subject, end.ref.session, chunks=list(end.keys), rows=end.frames,
                                 label_file=end.ref.label_file, label_sha256=file_sha256(end.ref.label_file),
                                 anomalies=extra)
        self.no_face = []


def prepare(dataset: str, raw_dir: str | os.PathLike, out: str | os.PathLike, *, workers: int = 1,
            landmarks: str = "auto", size: int = 256, box_enlarge: float = 2.9, store: str = "jpeg",
            resume: bool = False, force: bool = False, reader_options: dict | None = None,
            progress: Progress | None = None, detect_max_side: int = 640, executor: Executor | None = None,
            chunk_frames: int = CHUNK_FRAMES, window: int | None = None, dask: str | None = None
            ) -> PrepareReport:
    """Align every frame of the raw distribution at `raw_dir` into the store `out`.

    `landmarks`: "shipped" uses only the dataset's landmark files, "dlib" only detection,
    "auto" the shipped ones where a frame has them and dlib elsewhere. Frames without a face
    are kept (face=0) and reported; undecodable frames are reported with their file.
    `executor` runs the chunks (default: `workers` local processes, in-process for 1), or
    `dask` names a Dask cluster to run them on (`local[:N]` or a scheduler address); at most
    `window` (default 2 x workers) chunks are in flight.
    """
    if dask is not None:
        if executor is not None:
            raise ConfigError("give prepare an executor or a Dask address, not both")
        from .dask_cluster import dask_executor

        with dask_executor(dask) as (cluster, threads):
            return prepare(dataset, raw_dir, out, workers=workers, landmarks=landmarks, size=size,
                           box_enlarge=box_enlarge, store=store, resume=resume, force=force,
                           reader_options=reader_options, progress=progress, detect_max_side=detect_max_side,
                           executor=cluster, chunk_frames=chunk_frames, window=window or 2 * threads)
    if landmarks not in LANDMARK_MODES:
        raise ConfigError(f"unknown landmark source {landmarks!r}; expected one of {', '.join(LANDMARK_MODES)}")
    if workers < 1 or chunk_frames < 1:
        raise ConfigError(f"workers and chunk_frames must be at least 1, got {workers} and {chunk_frames}")
    t0 = time.perf_counter()
    plan = make_plan(dataset, raw_dir, landmarks=landmarks, size=size, box_enlarge=box_enlarge, store=store,
                     reader_options=reader_options, detect_max_side=detect_max_side, chunk_frames=chunk_frames)
    report = PrepareReport(Path(out).expanduser().resolve(), plan.settings.dataset)
    final = report.out
    if resume and final.exists() and not force and not _partial_exists(final):
        return _already_complete(final, plan.settings, report, t0)
    writer = StoreWriter(final, plan.settings, resume=resume, force=force)
    s = plan.settings

    def job(frames: list[FrameRecord]) -> Job:
        return Job(frames, landmarks, size, box_enlarge, store, s.jpeg_quality, s.with_intensities, len(s.aus),
                   detect_max_side)

    own = executor is None
    executor = local_executor(workers) if own else executor
    finished = False
    try:
        sink = _Writer(writer, plan, report, landmarks, progress)
        steps = _steps(plan, writer, job, chunk_frames)
        lost = _naming_errors(plan, final)
        for step, result in ordered_map(executor, process_chunk, steps, window or 2 * workers, lost):
            sink.step(step, result)
        report.anomalies.extend(plan.reader_report)
        writer.finish(source=plan.source, anomalies=list(plan.reader_report), sessions=len(plan.refs),
                      synthetic=plan.synthetic)
        finished = True
    finally:
        if own:  # on Ctrl-C or an error, do not wait for chunks nobody will write
            executor.shutdown(wait=finished, cancel_futures=True)
    report.sessions, report.frames = len(plan.refs), sum(plan.counts)
    report.origins = Counter({name: report.origins[code] for name, code in ORIGIN.items() if report.origins[code]})
    report.seconds = time.perf_counter() - t0
    return report


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
    from .store import open_store

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


__all__ = ["prepare", "make_plan", "PrepareReport", "LANDMARK_MODES", "CHUNK_FRAMES", "process_chunk", "Job"]
