"""A frame's fate never depends on text on the process's stderr.

Decoding used to point fd 2 at a file around each decode and take whatever landed there for
the decoder's complaint, so another thread's logging (or `austack predict`'s own progress bar)
dropped good frames. Here a thread writes to stderr the whole time while videos and JPEGs are
decoded and stores prepared: every frame is kept and the bytes equal a quiet run's. (The
predict API and CLI under the same noise, in a pseudo-terminal, are in `test_predict.py`.)"""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from austack.datasets.base import PixelSource
from austack.faces.decode import decode_frames, iter_frames, video_frame_count
from austack.prepare import prepare
from austack.synth import synthesize
from austack.synth.layouts.disfa import write_video

from stderr_noise import stderr_noise


def moving_frames(n: int, h: int = 120, w: int = 160):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for i in range(n):
        yield np.roll(base, 3 * i, axis=1), np.zeros((68, 2), np.float32)


def test_video_and_jpeg_frames_decode_the_same_with_stderr_busy(tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video, moving_frames(60))
    sources = [PixelSource("video", str(video), index=i) for i in range(60)]
    jpegs = []
    for i, (frame, _) in enumerate(moving_frames(20, 480, 640)):
        path = tmp_path / f"{i:04d}.jpg"
        cv2.imwrite(str(path), frame)
        jpegs.append(PixelSource("image", str(path)))
    rows = [150] * len(jpegs)       # the row cut: libjpeg skips the rest and warns (expected)
    quiet = list(iter_frames(sources)), list(decode_frames(jpegs, [2] * len(jpegs), rows=rows))
    with stderr_noise() as noise:
        noisy = list(iter_frames(sources)), list(decode_frames(jpegs, [2] * len(jpegs), rows=rows))
        counted = video_frame_count(video, decodable=True)
    assert noise["writes"] > 50
    assert counted == (60, 60)
    for a, b in zip(quiet[0] + [p for p, _ in quiet[1]], noisy[0] + [p for p, _ in noisy[1]]):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)


@pytest.mark.parametrize("layout", ["disfa", "bp4d"])
def test_prepare_keeps_every_frame_and_the_same_bytes_with_stderr_busy(tmp_path, layout):
    raw = tmp_path / "raw"
    synthesize(raw, layout, subjects=2, sessions=1, frames=30, size=256, seed=5)
    quiet = prepare(layout, raw, tmp_path / "quiet.h5", landmarks="shipped")
    with stderr_noise() as noise:
        noisy = prepare(layout, raw, tmp_path / "noisy.h5", landmarks="shipped")
    assert noise["writes"] > 20
    digest = [hashlib.sha256((tmp_path / f"{n}.h5").read_bytes()).hexdigest() for n in ("quiet", "noisy")]
    assert digest[0] == digest[1]
    assert not [a for a in noisy.anomalies.items if a.kind == "unreadable"]
    assert noisy.frames == quiet.frames
