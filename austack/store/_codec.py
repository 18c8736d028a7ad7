"""Image bytes in the store: deterministic JPEG (OpenCV's libjpeg) or raw uint8 arrays.

Encoding is deterministic for a given OpenCV build, which `prepare --resume` relies on: a
resumed run writes the same bytes as an uninterrupted one.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import StoreError


def encode_image(rgb: np.ndarray, encoding: str, quality: int = 95, *, bgr: bool = False) -> np.ndarray:
    """One aligned RGB image (BGR if `bgr`) as a store row: a uint8 vector of JPEG bytes, or
    the RGB array itself (a new one when `bgr`)."""
    if encoding == "raw":
        return cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB) if bgr else np.ascontiguousarray(rgb, dtype=np.uint8)
    image = rgb if bgr else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise StoreError(f"OpenCV could not JPEG-encode an image of shape {rgb.shape}")
    return buf.reshape(-1)


def decode_image(row: np.ndarray, encoding: str, *, where: str = "store") -> np.ndarray:
    """A store row back to RGB uint8 H x W x 3."""
    if encoding == "raw":
        return np.asarray(row)
    bgr = cv2.imdecode(np.asarray(row, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise StoreError(f"{where}: image bytes do not decode as JPEG; run `austack verify` on it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
