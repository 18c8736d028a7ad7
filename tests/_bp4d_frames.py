"""BP4D-size frames for the per-core speed checks: 1392 x 1040, JPEG quality 100 (as BP4D
ships them), the face at BP4D's scale (an inter-ocular distance of about 257 px), mild
sensor-like noise, with exact shipped 68-point landmarks.

The astronaut photo is scaled up so its face has that size, and each frame is a crop at a
slightly different place, so the landmarks move from frame to frame as a head does.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

from _prepare_fake import astronaut_68
from austack.faces.align import landmarks_68_to_49
from austack.datasets.base import FrameRecord, PixelSource

W, H = 1392, 1040
IOD = 257.0        # inter-ocular distance, pixels
NOISE = 3.0        # grey levels, Gaussian


@cache
def _scene() -> tuple[np.ndarray, np.ndarray, int]:
    img, p68 = astronaut_68()
    p49 = landmarks_68_to_49(p68)
    k = IOD / float(np.linalg.norm(p49[19:25].mean(0) - p49[25:31].mean(0)))
    big = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    pad = max(W, H)
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REFLECT), p68 * k + pad, pad


def bp4d_frame(i: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(RGB 1040 x 1392 frame, its 68 landmarks) for frame `i`."""
    scene, p68, _ = _scene()
    centre = p68[17:].mean(0)
    x0 = int(centre[0] - W / 2 + 9 * np.sin(i))
    y0 = int(centre[1] - H / 2 + 7 * np.cos(1.3 * i))
    frame = scene[y0:y0 + H, x0:x0 + W]
    rng = np.random.default_rng(seed + i)
    frame = np.clip(frame + rng.normal(0, NOISE, frame.shape), 0, 255).astype(np.uint8)
    return frame, (p68 - [x0, y0]).astype(np.float32)


def write_bp4d_frames(folder: Path, n: int, aus: int = 12) -> list[FrameRecord]:
    """`n` frames as JPEG files (quality 100) with their shipped landmarks."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        frame, p68 = bp4d_frame(i)
        path = folder / f"{i:04d}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
        out.append(FrameRecord("F001", "T1", i, PixelSource("image", str(path)), np.zeros(aus, np.int8),
                               landmarks=p68))
    return out
