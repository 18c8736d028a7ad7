"""The unit of prepare's work: one chunk of one session, as a job and as its result.

A `Job` holds everything a worker needs and a `ChunkResult` everything the writer needs; both
pickle, and the chunk paths read no globals, so any `concurrent.futures.Executor` (a local
process pool, or a cluster's) can run them. The landmark tracker restarts at each chunk, so a
chunk's result depends on that chunk's inputs only: `job_key` names them, and a resumed run
keeps a written chunk exactly when its key is unchanged. The frame plans (`frame_plans`) and
the rows (`chunk_rows`) are shared by the CPU path (`cpu`) and the GPU path (`gpu`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from ..faces.align import decode_scale, last_row, similarity_49, to_49
from ..datasets.base import FrameRecord
from ..errors import ConfigError
from ..store import FrameRows

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
    device: str | None = None   # a torch device: decode and warp there (`gpu`)


@dataclass
class ChunkResult:
    rows: FrameRows
    no_face: list[int]          # frame numbers kept with face=0
    seconds: float


def frame_plans(job: Job) -> tuple[list, list[int], list[int | None]]:
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


def chunk_rows(job: Job, images, points, matrix, face, origin, anomalies) -> FrameRows:
    n, frames = len(job.frames), job.frames
    intensities = (np.stack([f.intensities for f in frames]).astype(np.int8) if job.with_intensities else None)
    return FrameRows(images=images, labels=np.stack([f.labels for f in frames]).astype(np.int8).reshape(n, job.n_au),
                     landmarks=points, matrix=matrix, face=face, landmark_origin=origin,
                     frame=np.array([f.frame for f in frames], np.int32), split=[f.split or "" for f in frames],
                     intensities=intensities, anomalies=anomalies)


def pixel_decoder(device: str | None) -> str:
    """The name a store records for the pixels of `device` ("opencv" for the CPU path)."""
    if device is None:
        return "opencv"
    import torch

    return f"torchvision-{torch.device(device).type}"


def job_key(job: Job) -> str:
    """sha256 of everything a chunk's bytes depend on but the pixel files' content."""
    h = hashlib.sha256()
    settings = [KEY_VERSION, job.landmarks, job.size, job.box_enlarge, job.encoding, job.quality,
                job.with_intensities, job.n_au, job.detect_max_side]
    if job.device is not None:   # the device's kind, not its number: cuda:0 and cuda:1 agree
        settings.append(pixel_decoder(job.device))
    h.update(json.dumps(settings).encode())
    for f in job.frames:
        s = f.source
        h.update(json.dumps([f.subject, f.session, int(f.frame), s.kind, s.path, s.member, s.index,
                             f.split]).encode())
        for a in (f.labels, f.intensities, f.landmarks):
            h.update(b"-" if a is None else np.ascontiguousarray(a, dtype="<f8").tobytes() + b"|")
    return h.hexdigest()
