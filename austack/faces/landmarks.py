"""68-point face landmarks with dlib, for datasets that ship none (and `--landmarks dlib`).

The HOG frontal detector dominates the cost (about 120 ms on a 1392x1040 frame), the shape
predictor is about 1 ms. So `LandmarkTracker` detects on a downscaled frame, and within a
session reuses the box implied by the previous frame's landmarks as long as the new fit looks
like the same face (cheap test below); it detects again when it does not, or when it has no box.

The predictor file ships in the `face-recognition-models` package; its `__init__` imports the
removed `pkg_resources`, so the file is located with `find_spec` and the package never imported.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def predictor_path() -> Path:
    """Where `shape_predictor_68_face_landmarks.dat` is installed."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("dlib landmarks need the 'face-recognition-models' package, which holds "
                          f"{PREDICTOR_FILE}; install it with pip or prepare with --landmarks shipped")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise ConfigError(f"{path} is missing; reinstall 'face-recognition-models'", path=path)
    return path


@cache
def _dlib_models():
    """(detector, predictor), loaded once per process (the predictor file is ~100 MB)."""
    import dlib  # imported here: stores and the CLI must not pay for it

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor_path()))


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def detect_box(gray: np.ndarray, *, detect_max_side: int = 640, upsample: int = 0
               ) -> tuple[float, float, float, float] | None:
    """The largest frontal face as (left, top, right, bottom) in full-frame pixels, or None.

    Detection runs on a copy whose longer side is at most `detect_max_side` pixels.
    """
    detector, _ = _dlib_models()
    scale = min(1.0, detect_max_side / max(gray.shape[:2]))
    small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    faces = detector(small, upsample)
    if len(faces) == 0:
        return None
    r = max(faces, key=lambda r: r.width() * r.height())
    return r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale


def fit_68(gray: np.ndarray, box) -> np.ndarray:
    """The 68 landmarks (float32, 0-based) the predictor fits inside `box`."""
    import dlib

    _, predictor = _dlib_models()
    rect = dlib.rectangle(*(int(round(v)) for v in box))
    shape = predictor(gray, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def detect_68(image: np.ndarray, *, detect_max_side: int = 640, upsample: int = 0) -> np.ndarray | None:
    """Detect and fit one frame from scratch: 68 points (0-based) or None for no face."""
    gray = _gray(image)
    box = detect_box(gray, detect_max_side=detect_max_side, upsample=upsample)
    return None if box is None else fit_68(gray, box)


def _extent(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and size (mean of width and height) of the landmarks' bounding box."""
    lo, hi = points.min(0), points.max(0)
    return (lo + hi) / 2, float((hi - lo).mean())


@dataclass
class TrackerStats:
    frames: int = 0
    detections: int = 0   # frames where the detector ran
    reused: int = 0       # frames fitted in the previous frame's box
    no_face: int = 0


class LandmarkTracker:
    """68-point landmarks for the frames of one session, in order.

    A fit in the reused box is accepted when its landmark extent moved less than `max_drift`
    of the face size and changed size by less than a factor `max_scale` since the last frame:
    a predictor pushed off the face collapses or drifts, which this catches for the price of
    a min/max. Otherwise (or with no box) the detector runs. `redetect_every` > 0 forces a
    detection every that many frames as a guard against slow drift.
    """

    def __init__(self, *, detect_max_side: int = 640, upsample: int = 0, max_drift: float = 0.15,
                 max_scale: float = 1.15, redetect_every: int = 0):
        self.detect_max_side, self.upsample = detect_max_side, upsample
        self.max_drift, self.max_scale, self.redetect_every = max_drift, max_scale, redetect_every
        self.stats = TrackerStats()
        self._box = None        # box to try on the next frame
        self._offset = None     # detector box relative to landmark extent, kept from the last detection
        self._last = None       # (centre, size) of the last accepted landmarks
        self._since_detect = 0

    def reset(self) -> None:
        self._box = self._offset = self._last = None

    def _plausible(self, points: np.ndarray) -> bool:
        centre, size = _extent(points)
        last_centre, last_size = self._last
        if size <= 0 or not np.isfinite(points).all():
            return False
        drift = float(np.hypot(*(centre - last_centre))) / last_size
        ratio = max(size / last_size, last_size / size)
        return drift <= self.max_drift and ratio <= self.max_scale

    def _accept(self, points: np.ndarray) -> np.ndarray:
        centre, size = _extent(points)
        self._last = (centre, size)
        # Next frame's box: the detector's box as it sat around these landmarks, moved along.
        dl, dt, dr, db = self._offset
        self._box = (centre[0] + dl * size, centre[1] + dt * size, centre[0] + dr * size, centre[1] + db * size)
        return points

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """68 points (float32, 0-based) for the next frame of the session, or None."""
        self.stats.frames += 1
        gray = _gray(image)
        due = self.redetect_every > 0 and self._since_detect >= self.redetect_every
        if self._box is not None and not due:
            points = fit_68(gray, self._box)
            if self._plausible(points):
                self.stats.reused += 1
                self._since_detect += 1
                return self._accept(points)
        self.stats.detections += 1
        self._since_detect = 0
        box = detect_box(gray, detect_max_side=self.detect_max_side, upsample=self.upsample)
        if box is None:
            self.stats.no_face += 1
            self.reset()
            return None
        points = fit_68(gray, box)
        centre, size = _extent(points)
        l, t, r, b = box
        self._offset = ((l - centre[0]) / size, (t - centre[1]) / size, (r - centre[0]) / size, (b - centre[1]) / size)
        return self._accept(points)
