"""Frames to aligned faces, by prepare's own path: dlib landmarks (`LandmarkTracker`), then
the 49-point alignment and crop (`align.align_frame`) at the size the detector was trained on.

The frames of one video or folder share one tracker, exactly as a session does in prepare,
so a prepared store and `predict` see the same landmarks for the same frames. A lone image is
a sequence of one. With `all_faces`, every face dlib detects in an image is aligned (largest
first); videos always follow one face.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from ..faces.align import align_frame
from ..faces.landmarks import LandmarkTracker, fit_68


@dataclass(frozen=True)
class FoundFace:
    number: int                                 # 1-based, largest face first
    box: tuple[float, float, float, float]      # x, y, w, h of the 68 landmarks, frame pixels
    image: np.ndarray                           # aligned uint8 (S, S, 3)


class _Recorder:
    """Passes a frame to the tracker and keeps the 68 points it returned (for the face box)."""

    def __init__(self, tracker: LandmarkTracker):
        self.tracker, self.points = tracker, None

    def __call__(self, pixels: np.ndarray):
        self.points = self.tracker(pixels)
        return self.points


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = points.min(0), points.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])


MIN_FACE_PX = 80     # dlib's frontal detector finds faces from about 80 px across (no upsampling)


@cache
def _frontal_detector():
    import dlib  # imported on first use, like `landmarks`

    return dlib.get_frontal_face_detector()


class FaceFinder:
    """`finder(frame) -> [FoundFace]` (empty: no face), keeping a tracker per sequence."""

    def __init__(self, size: int, box_enlarge: float, *, all_faces: bool = False,
                 upsample: int = 0, detect_max_side: int = 640):
        self.size, self.box_enlarge, self.all_faces = size, box_enlarge, all_faces
        self.upsample, self.detect_max_side = upsample, detect_max_side
        self._sequence, self._recorder = None, None
        # --all-faces: the smallest face (px, in the original image) the search could see in the
        # most shrunk image; 0 when no image was shrunk. dlib's frontal detector needs about
        # MIN_FACE_PX at the scale it searches, halved per upsampling.
        self.smallest_findable = 0.0

    def __call__(self, pixels: np.ndarray, sequence: int, still: bool) -> list[FoundFace]:
        if self.all_faces and still:
            return self._every_face(pixels)
        if sequence != self._sequence:
            tracker = LandmarkTracker(detect_max_side=self.detect_max_side, upsample=self.upsample)
            self._sequence, self._recorder = sequence, _Recorder(tracker)
        a = align_frame(pixels, self._recorder, self.size, self.box_enlarge)
        return [FoundFace(1, _box(self._recorder.points), a.image)] if a.face else []

    def _every_face(self, pixels: np.ndarray) -> list[FoundFace]:
        self._sequence = None   # a tracker must not carry over past an image seen this way
        gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, self.detect_max_side / max(gray.shape[:2]))
        small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale,
                                                     interpolation=cv2.INTER_AREA)
        if scale < 1.0:
            self.smallest_findable = max(self.smallest_findable, MIN_FACE_PX / 2 ** self.upsample / scale)
        rects = sorted(_frontal_detector()(small, self.upsample), key=lambda r: -r.area())
        found = []
        for r in rects:
            box = (r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale)
            points = fit_68(gray, box)
            a = align_frame(pixels, points, self.size, self.box_enlarge)
            if a.face:
                found.append(FoundFace(len(found) + 1, _box(points), a.image))
        return found
