"""The unit of prepare's work: one chunk of one session, decoded, aligned and encoded.

A `Job` holds everything a worker needs and a `ChunkResult` everything the writer needs; both
pickle, and `process_chunk` reads no globals, so any `concurrent.futures.Executor` (a local
process pool, or a cluster's) can run it. The landmark tracker restarts at each chunk, so a
chunk's result depends on that chunk's inputs only: `job_key` names them, and a resumed run
keeps a written chunk exactly when its key is unchanged.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from ..align import (BORDER, align_frame, at_scale, decode_scale, last_row, similarity_49, to_49,
                    transform_points, warp)
from ..datasets.base import FrameRecord
from ..datasets.pixels import group_frame_errors
from ..errors import ConfigError
from ..store import ORIGIN, FrameRows, encode_image

KEY_VERSION = 2  # bump when process_chunk would write other bytes for the same job


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
    device: str | None = None   # a torch device: decode and warp there (`prepare_gpu`)


@dataclass
class ChunkResult:
    rows: FrameRows
    no_face: list[int]          # frame numbers kept with face=0
    seconds: float


def _frame_plans(job: Job) -> tuple[list, list[int], list[int | None]]:
    """Per frame, before decoding: (49 points, matrix) for shipped landmarks, "track" for the
    landmark tracker, None for no face; the scale to decode it at; and the last frame row the
    warp reads (a JPEG is decoded down to there only; None: every row)."""
    plans, scales, rows = [], [], []
    for fr in job.frames:
        shipped = fr.landmarks is not None and np.isfinite(fr.landmarks).all()
        if shipped and job.landmarks != "dlib":
            plan = _shipped_matrix_for(fr.landmarks, job)
        else:
            plan = None if job.landmarks == "shipped" else "track"
        plans.append(plan)
        # no face: decode small, only to tell an unreadable frame; the tracker wants every pixel
        scales.append(decode_scale(plan[1]) if isinstance(plan, tuple) else 1 if plan else 8)
        rows.append(last_row(plan[1], job.size, scales[-1]) if isinstance(plan, tuple)
                    else None if plan else 0)
    return plans, scales, rows


def _shipped_matrix_for(landmarks, job: Job):
    try:
        p49 = to_49(landmarks)
        return p49, similarity_49(p49, job.size, job.box_enlarge)
    except ConfigError:  # both eye centres on one point: no usable face
        return None


_forked = False   # this process was forked from one that had imported austack


def _mark_forked() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_mark_forked)


@contextmanager
def one_cv2_thread() -> Iterator[None]:
    """OpenCV on one thread inside the block, as it was after. prepare holds this around a
    whole run: its parallelism is its workers, one core each, and OpenCV's own threads would
    have N workers compete for N cores (and a `--workers 1` run use more than one).

    Only ever in a process that owns its OpenCV thread pool, never in a forked pool worker:
    there the pool's state is the parent's, and reconfiguring it waits forever on threads
    that were not forked. Set before the fork, the workers inherit one thread; in a process
    forked from another (a user's own pool calling prepare), it is left as it is."""
    before = cv2.getNumThreads()
    if before != 1 and not _forked:
        cv2.setNumThreads(1)
    try:
        yield
    finally:
        if before != 1 and not _forked:
            cv2.setNumThreads(before)


def process_chunk(job: Job) -> ChunkResult:
    """Decode, landmark, align and encode one chunk (runs in a worker process).

    Frames with shipped landmarks take the short path: the warp is known before decoding, so
    each is decoded only as large as the aligned face needs (`align.decode_scale`) and only
    down to the last row it reads (`align.last_row`; the same pixels as a whole decode), warped
    in OpenCV's BGR order into one reused array and encoded from it."""
    if job.device is not None:
        from .gpu import process_chunk_gpu

        result = process_chunk_gpu(job)
        if result is not None:
            return result
    return _process_chunk(job)


def _process_chunk(job: Job) -> ChunkResult:
    from ..datasets.pixels import decode_frames

    t0 = time.perf_counter()
    n, tracker = len(job.frames), None
    grey = encode_image(np.full((job.size, job.size, 3), BORDER, np.uint8), job.encoding, job.quality)
    aligned = np.empty((job.size, job.size, 3), np.uint8)
    images, no_face, failed = [], [], []
    points = np.full((n, 49, 2), np.nan, np.float32)
    matrix = np.full((n, 2, 3), np.nan, np.float32)
    face, origin = np.zeros(n, np.uint8), np.zeros(n, np.uint8)
    plans, scales, rows = _frame_plans(job)
    decoded = decode_frames([f.source for f in job.frames], scales, bgr=True, rows=rows)
    for i, (fr, plan, (pixels, scale)) in enumerate(zip(job.frames, plans, decoded)):
        if isinstance(pixels, Exception):  # kept with face=0, reported as unreadable (not no_face)
            failed.append((fr.frame, pixels))
            images.append(grey)
            continue
        if isinstance(plan, tuple):
            p49, m = plan
            warp(pixels, at_scale(m, scale), job.size, out=aligned)
            points[i], matrix[i], face[i], origin[i] = transform_points(p49, m), m, 1, ORIGIN["shipped"]
            images.append(encode_image(aligned, job.encoding, job.quality, bgr=True))
            continue
        if plan is None:
            no_face.append(fr.frame)
            images.append(grey)
            continue
        tracker = tracker or _tracker(job)
        a = align_frame(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), tracker, job.size, job.box_enlarge)
        if a.face:
            points[i], matrix[i], face[i], origin[i] = a.points, a.matrix, 1, ORIGIN[a.origin]
        else:
            no_face.append(fr.frame)
        images.append(encode_image(a.image, job.encoding, job.quality))
    anomalies = group_frame_errors(failed)   # one entry per video and cause, not one per frame
    return ChunkResult(_rows(job, images, points, matrix, face, origin, anomalies), no_face,
                       time.perf_counter() - t0)


def _tracker(job: Job):
    from ..landmarks import LandmarkTracker

    return LandmarkTracker(detect_max_side=job.detect_max_side)


def _rows(job: Job, images, points, matrix, face, origin, anomalies) -> FrameRows:
    n, frames = len(job.frames), job.frames
    intensities = (np.stack([f.intensities for f in frames]).astype(np.int8) if job.with_intensities else None)
    return FrameRows(images=images, labels=np.stack([f.labels for f in frames]).astype(np.int8).reshape(n, job.n_au),
                     landmarks=points, matrix=matrix, face=face, landmark_origin=origin,
                     frame=np.array([f.frame for f in frames], np.int32), split=[f.split or "" for f in frames],
                     intensities=intensities, anomalies=anomalies)


def job_key(job: Job) -> str:
    """sha256 of everything a chunk's bytes depend on but the pixel files' content."""
    h = hashlib.sha256()
    settings = [KEY_VERSION, job.landmarks, job.size, job.box_enlarge, job.encoding, job.quality,
                job.with_intensities, job.n_au, job.detect_max_side]
    if job.device is not None:   # the device's kind, not its number: cuda:0 and cuda:1 agree
        from .gpu import pixel_decoder

        settings.append(pixel_decoder(job.device))
    h.update(json.dumps(settings).encode())
    for f in job.frames:
        s = f.source
        h.update(json.dumps([f.subject, f.session, int(f.frame), s.kind, s.path, s.member, s.index,
                             f.split]).encode())
        for a in (f.labels, f.intensities, f.landmarks):
            h.update(b"-" if a is None else np.ascontiguousarray(a, dtype="<f8").tobytes() + b"|")
    return h.hexdigest()
