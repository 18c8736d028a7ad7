"""Tiny `SynthSession`s for the reader/layout round-trip tests: noise frames, a fixed face shape.

They do not use the face renderer, so layout writers and readers are tested on their own.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from austack.synth.layouts.base import ALL_AUS, SynthSession


def face_points(h: int, w: int) -> np.ndarray:
    """68 0-based points shaped roughly like a face in the middle of an h x w frame."""
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    pts = np.stack([w / 2 + 0.3 * w * np.cos(t), h / 2 + 0.35 * h * np.sin(t)], 1)
    pts[36:42] = [w * 0.38, h * 0.42]    # eyes, so the eye line is defined
    pts[42:48] = [w * 0.62, h * 0.42]
    return pts.astype(np.float32)


def make_session(subject: str, session: str, n_frames: int, seed: int, size=(48, 64)) -> SynthSession:
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, 6, (n_frames, len(ALL_AUS))).astype(np.int8)
    written = clean.copy()
    h, w = size
    pts = face_points(h, w)

    def frames():
        frame_rng = np.random.default_rng(seed + 1)
        for f in range(n_frames):
            yield frame_rng.integers(0, 256, (h, w, 3), dtype=np.uint8), pts + f * 0.25

    return SynthSession(subject, session, clean, written, frames)


def relative_anomalies(report, root: Path) -> list[tuple[str, str]]:
    """(kind, path relative to root) of every reported anomaly, sorted, to compare with `Truth`."""
    return sorted((a.kind, Path(os.path.relpath(a.path, root)).as_posix()) for a in report)


def frames_of(records, subject: str):
    return next(r for r in records if r.subject == subject).frames
