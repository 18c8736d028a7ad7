"""The pieces of `prepare` shared by a plain run and a sharded one (`shards`).

`session_steps` cuts one session into chunks in write order and tells which a resume keeps;
`StepWriter` saves each chunk's result into a `StoreWriter`, closes sessions and counts for
the report. A plain run feeds every session to one writer; a sharded run gives each shard
task its own writer for its group of sessions.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from ..datasets.base import Anomaly, AnomalyReport, FrameRecord, SessionRef
from ..progress import Progress
from ..store import StoreWriter
from .job import ChunkResult, Job, job_key

NO_FACE_LISTED = 20  # frame numbers spelled out per session in a no_face anomaly


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


def job_maker(template: Job) -> Callable[[list[FrameRecord]], Job]:
    """The chunk job for some frames, from a job that has every setting but no frames."""
    return lambda frames: replace(template, frames=frames)


def session_steps(i: int, ref: SessionRef, frames: list[FrameRecord], writer: StoreWriter,
                  job: Callable[[list], Job], chunk_frames: int) -> Iterator[tuple[Step, Job | None]]:
    """(step, job to run or None) for every chunk of session `i`, in write order."""
    jobs = [job(frames[a:a + chunk_frames]) for a in range(0, len(frames), chunk_frames)]
    keys = tuple(job_key(j) for j in jobs)
    end = SessionEnd(ref, keys, len(frames), _where(frames))
    if _session_kept(writer, i, ref, keys):
        yield Step(i, 0, None, len(frames), end=SessionEnd(ref, keys, len(frames), end.where, True)), None
        return
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


class StepWriter:
    """The ordered writer: saves each chunk result, closes sessions, counts for the report."""

    def __init__(self, writer: StoreWriter, refs: list[SessionRef], total: int, report: PrepareReport, mode: str,
                 progress: Progress | None):
        self.w, self.refs, self.report, self.mode, self.progress = writer, refs, report, mode, progress
        self.done = 0                   # frames saved, this run or before
        self.total = total
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
            self.progress(self.done, self.total, self.refs[step.session].subject)

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
