"""`prepare`: one raw distribution -> one aligned HDF5 store, resumable.

The parent process reads sessions (labels, shipped landmarks; no pixels) in the reader's order,
cuts each into chunks of at most `CHUNK_FRAMES` frames and hands the chunks to worker processes,
which decode, find landmarks, align and encode. The parent writes the results back in order, a
session at a time, so at most `2 * workers` chunks are ever in memory whatever the dataset size.

Chunks are cut the same way whatever `workers` is, and the landmark tracker restarts at each
chunk, so every run of the same inputs writes the same bytes, which makes `resume` exact.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .align import BORDER, align_face_49, alignment_params, landmarks_68_to_49, to_49
from .datasets.base import Anomaly, AnomalyReport, FrameRecord, create_reader
from .errors import ConfigError, StoreMismatchError
from .protocols import load_protocol
from .store import ORIGIN, FrameRows, StoreSettings, StoreWriter, encode_image

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
    resumed_sessions: int = 0      # sessions found whole in the partial file and kept
    written_frames: int = 0        # rows written by this run
    faces: int = 0                 # of the rows written by this run, those with an aligned face
    origins: Counter = field(default_factory=Counter)   # landmark origin of the rows written
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
class Job:
    """One chunk of one session, everything a worker needs (picklable)."""

    frames: list[FrameRecord]
    landmarks: str
    size: int
    box_enlarge: float
    encoding: str
    quality: int
    with_intensities: bool
    n_au: int
    detect_max_side: int = 640


@dataclass
class ChunkResult:
    rows: FrameRows
    no_face: list[int]          # frame numbers kept with face=0
    seconds: float


def _frame_landmarks(fr: FrameRecord) -> np.ndarray | None:
    if fr.landmarks is None or not np.isfinite(fr.landmarks).all():
        return None
    return to_49(fr.landmarks)


def process_chunk(job: Job) -> ChunkResult:
    """Decode, landmark, align and encode one chunk (runs in a worker process)."""
    from .datasets.pixels import iter_frames
    from .landmarks import LandmarkTracker

    t0 = time.perf_counter()
    n, s = len(job.frames), job.size
    tracker = None
    grey = np.full((s, s, 3), BORDER, np.uint8)
    images, no_face, anomalies = [], [], []
    points = np.full((n, 49, 2), np.nan, np.float32)
    matrix = np.full((n, 2, 3), np.nan, np.float32)
    face = np.zeros(n, np.uint8)
    origin = np.zeros(n, np.uint8)
    for i, (fr, pixels) in enumerate(zip(job.frames, iter_frames([f.source for f in job.frames]))):
        aligned = grey
        if isinstance(pixels, Exception):
            anomalies.append(Anomaly("unreadable", fr.source.describe(),
                                     f"{pixels}; frame {fr.frame} kept with face=0", 1))
            images.append(encode_image(grey, job.encoding, job.quality))
            continue
        p49, how = None, "none"
        if job.landmarks != "dlib":
            p49, how = _frame_landmarks(fr), "shipped"
        if p49 is None and job.landmarks != "shipped":
            tracker = tracker or LandmarkTracker(detect_max_side=job.detect_max_side)
            p68 = tracker(pixels)
            p49, how = (None, "none") if p68 is None else (landmarks_68_to_49(p68), "dlib")
        if p49 is not None:
            try:
                aligned, m, aligned_points = align_face_49(pixels, p49, s, job.box_enlarge)
                points[i], matrix[i], face[i], origin[i] = aligned_points, m, 1, ORIGIN[how]
            except ConfigError:  # degenerate landmarks (both eyes on one point): no usable face
                aligned = grey
        if not face[i]:
            no_face.append(fr.frame)
        images.append(encode_image(aligned, job.encoding, job.quality))
    rows = FrameRows(
        images=images,
        labels=np.stack([f.labels for f in job.frames]).astype(np.int8).reshape(n, job.n_au),
        landmarks=points, matrix=matrix, face=face, landmark_origin=origin,
        frame=np.array([f.frame for f in job.frames], np.int32),
        split=[f.split or "" for f in job.frames],
        intensities=(np.stack([f.intensities for f in job.frames]).astype(np.int8) if job.with_intensities
                     else None),
        anomalies=anomalies)
    return ChunkResult(rows, no_face, time.perf_counter() - t0)


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


def _no_face_anomaly(frames: list[FrameRecord], no_face: list[int], mode: str) -> Anomaly:
    src = frames[0].source
    where = os.path.dirname(src.path) if src.kind == "image" else src.path
    shown = ", ".join(map(str, no_face[:NO_FACE_LISTED])) + (", ..." if len(no_face) > NO_FACE_LISTED else "")
    return Anomaly("no_face", where, f"{frames[0].subject}/{frames[0].session}: {len(no_face)} of {len(frames)} "
                   f"frames have no usable landmarks (--landmarks {mode}), kept with face=0: frames {shown}",
                   len(no_face))


def _chunks(frames: list[FrameRecord]) -> Iterator[list[FrameRecord]]:
    for a in range(0, len(frames), CHUNK_FRAMES):
        yield frames[a:a + CHUNK_FRAMES]


def prepare(dataset: str, raw_dir: str | os.PathLike, out: str | os.PathLike, *, workers: int = 1,
            landmarks: str = "auto", size: int = 256, box_enlarge: float = 2.9, store: str = "jpeg",
            resume: bool = False, force: bool = False, reader_options: dict | None = None,
            progress: Progress | None = None, detect_max_side: int = 640) -> PrepareReport:
    """Align every frame of the raw distribution at `raw_dir` into the store `out`.

    `landmarks`: "shipped" uses only the dataset's landmark files, "dlib" only detection,
    "auto" the shipped ones where a frame has them and dlib elsewhere. Frames without a face
    are kept (face=0) and reported; undecodable frames are reported with their file.
    """
    if landmarks not in LANDMARK_MODES:
        raise ConfigError(f"unknown landmark source {landmarks!r}; expected one of {', '.join(LANDMARK_MODES)}")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    t0 = time.perf_counter()
    reader = create_reader(dataset, raw_dir, **(reader_options or {}))
    protocol = load_protocol(reader.protocol)
    refs = reader.sessions()
    # Pass 1: labels only, for the totals, the reader's anomalies and the per-session source hashes.
    reader_report = AnomalyReport()
    counts, with_intensities = [], False
    for ref in refs:
        rec = reader.read_session(ref, reader_report)
        counts.append(len(rec.frames))
        with_intensities |= any(f.intensities is not None for f in rec.frames)
    settings = StoreSettings(dataset=reader.dataset, aus=protocol.aus, protocol=protocol.id,
                             protocol_hash=protocol.hash, alignment=alignment_params(size, box_enlarge),
                             landmark_source=landmarks, image_encoding=store, with_intensities=with_intensities)
    report = PrepareReport(Path(out).expanduser().resolve(), reader.dataset)
    final = report.out
    if resume and final.exists() and not force and not _partial_exists(final):
        return _already_complete(final, settings, report, t0)

    pool = ProcessPoolExecutor(workers) if workers > 1 else None  # forked before the HDF5 file opens
    finished = False
    try:
        with StoreWriter(final, settings, resume=resume, force=force) as writer:
            done = writer.done()
            planned = [(r.subject, r.session) for r in refs[:len(done)]]
            if done != planned:
                raise StoreMismatchError(f"{writer.partial} holds sessions {done[:3]}... that do not match the "
                                         f"first sessions of {reader.root} ({planned[:3]}...); rerun with --force",
                                         path=writer.partial)
            report.resumed_sessions = len(done)
            total = sum(counts)
            written = sum(counts[:len(done)])
            if progress:
                progress(written, total, "")
            todo = refs[len(done):]

            def job(frames):
                return Job(frames, landmarks, size, box_enlarge, store, settings.jpeg_quality, with_intensities,
                           len(settings.aus), detect_max_side)

            def chunk_stream():
                """(session record, chunk index, number of chunks, job), in write order."""
                throwaway = AnomalyReport()  # the reader's anomalies were collected in pass 1
                for ref in todo:
                    rec = reader.read_session(ref, throwaway)
                    parts = list(_chunks(rec.frames)) or [[]]
                    for k, frames in enumerate(parts):
                        yield ref, rec, k, len(parts), job(frames)

            in_flight: deque = deque()
            stream = chunk_stream()
            session_no_face: list[int] = []
            while True:
                while len(in_flight) < 2 * workers:
                    item = next(stream, None)
                    if item is None:
                        break
                    ref, rec, k, n_parts, jb = item
                    result = (pool.submit(process_chunk, jb) if pool and jb.frames
                              else _Done(process_chunk(jb) if jb.frames else None))
                    in_flight.append((ref, rec, k, n_parts, result))
                if not in_flight:
                    break
                ref, rec, k, n_parts, fut = in_flight.popleft()
                res = fut.result()
                if k == 0:
                    writer.begin_session(ref.subject, ref.session, ref.label_file, file_sha256(ref.label_file))
                    session_no_face = []
                if res is not None:
                    writer.append(res.rows)
                    session_no_face += res.no_face
                    written += len(res.rows)
                    report.written_frames += len(res.rows)
                    report.faces += int(res.rows.face.sum())
                    report.origins.update(res.rows.landmark_origin.tolist())
                    report.anomalies.items.extend(res.rows.anomalies)
                if k == n_parts - 1:
                    extra = [_no_face_anomaly(rec.frames, session_no_face, landmarks)] if session_no_face else []
                    report.anomalies.items.extend(extra)
                    writer.end_session(extra)
                if progress:
                    progress(written, total, ref.subject)
            report.anomalies.extend(reader_report)
            source = {"root": str(reader.root), "reader_options": reader.options, "sessions": len(refs),
                      "frames": total, "landmarks": landmarks, "detect_max_side": detect_max_side,
                      "protocol_file": protocol.path}
            writer.finish(source=source, anomalies=list(reader_report))
            report.sessions, report.frames = len(refs), total
            finished = True
    finally:
        if pool:  # on Ctrl-C or an error, do not wait for chunks nobody will write
            pool.shutdown(wait=finished, cancel_futures=True)
    report.origins = Counter({name: report.origins[code] for name, code in ORIGIN.items() if report.origins[code]})
    report.seconds = time.perf_counter() - t0
    return report


class _Done:
    """A finished result with a future's `result()`, for the in-process path (workers=1)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


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


__all__ = ["prepare", "PrepareReport", "LANDMARK_MODES", "CHUNK_FRAMES", "process_chunk", "Job"]
