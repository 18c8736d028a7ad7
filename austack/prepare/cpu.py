"""prepare's chunk path on the CPU: OpenCV decodes and warps, dlib finds the faces that have no
shipped landmarks. Every frame of every dataset can take it (`chunk` sends the rest here)."""
from __future__ import annotations

import time

import cv2
import numpy as np

from ..faces.align import BORDER, align_frame, at_scale, transform_points, warp
from ..faces.decode import group_frame_errors
from ..store import ORIGIN, encode_image
from .job import ChunkResult, Job, chunk_rows, frame_plans


def process_chunk_cpu(job: Job) -> ChunkResult:
    """Decode, landmark, align and encode one chunk with OpenCV (and dlib where it tracks).

    Frames with shipped landmarks take the short path: the warp is known before decoding, so
    each is decoded only as large as the aligned face needs (`align.decode_scale`) and only
    down to the last row it reads (`align.last_row`; the same pixels as a whole decode), warped
    in OpenCV's BGR order into one reused array and encoded from it."""
    from ..faces.decode import decode_frames

    t0 = time.perf_counter()
    n, tracker = len(job.frames), None
    grey = encode_image(np.full((job.size, job.size, 3), BORDER, np.uint8), job.encoding, job.quality)
    aligned = np.empty((job.size, job.size, 3), np.uint8)
    images, no_face, failed = [], [], []
    points = np.full((n, 49, 2), np.nan, np.float32)
    matrix = np.full((n, 2, 3), np.nan, np.float32)
    face, origin = np.zeros(n, np.uint8), np.zeros(n, np.uint8)
    plans, scales, rows = frame_plans(job)
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
    return ChunkResult(chunk_rows(job, images, points, matrix, face, origin, anomalies), no_face,
                       time.perf_counter() - t0)


def _tracker(job: Job):
    from ..faces.landmarks import LandmarkTracker

    return LandmarkTracker(detect_max_side=job.detect_max_side)
