"""The 49-landmark similarity alignment that the published AU numbers were produced with.

The 49 points are the 68-point iBUG scheme without the jaw (0-16) and the two inner-mouth
corners (60, 64). The transform is a closed form, not a template fit: roll the eye line level,
take the box of five anchors (both eye centres, nose tip, mouth corners), enlarge it by
`box_enlarge` and scale it onto an S x S image so that its centre lands at ((S-1)/2, (S-1)/2)
and its larger side measures (S-1)/box_enlarge pixels. See docs and the alignment spec.

All coordinates are 0-based pixels; readers convert MATLAB's 1-based files before this point.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError

BORDER = 128  # grey of the pixels the warp takes from outside the frame
METHOD = "similarity-49"

# 49-point index k -> 68-point index: k+17 for k <= 42, k+18 for 43..45, k+19 for 46..48.
IDX_68_TO_49 = np.r_[17:60, 61:64, 65:68]
# DISFA ships the 68 without 60 and 64, so the same 49 are simply 17..65 of the 66.
IDX_66_TO_49 = np.arange(17, 66)

LEFT_EYE = slice(19, 25)    # image-left eye, 49-point order
RIGHT_EYE = slice(25, 31)   # image-right eye
NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT = 13, 31, 37


def _points(points, n: int, what: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (n, 2):
        raise ConfigError(f"{what} expects an ({n}, 2) array of landmarks, got shape {p.shape}")
    return p


def landmarks_68_to_49(points) -> np.ndarray:
    """The 49 alignment points out of a 68-point iBUG set (e.g. dlib output)."""
    return _points(points, 68, "landmarks_68_to_49")[IDX_68_TO_49]


def landmarks_66_to_49(points) -> np.ndarray:
    """The 49 alignment points out of a 66-point set (DISFA). Never use it on 68 points."""
    return _points(points, 66, "landmarks_66_to_49")[IDX_66_TO_49]


def to_49(points) -> np.ndarray:
    """Dispatch on the number of points: 49 pass through, 66 and 68 are sliced as above."""
    n = len(points)
    if n == 49:
        return _points(points, 49, "to_49")
    if n == 66:
        return landmarks_66_to_49(points)
    if n == 68:
        return landmarks_68_to_49(points)
    raise ConfigError(f"cannot take the 49 alignment points out of {n} landmarks; expected 49, 66 or 68")


def similarity_49(landmarks49, size: int = 256, box_enlarge: float = 2.9) -> np.ndarray:
    """The (2, 3) matrix that maps raw-frame pixels to the S x S aligned face."""
    p = _points(landmarks49, 49, "similarity_49")
    if not np.isfinite(p).all():
        raise ConfigError("similarity_49: landmarks contain NaN or infinity")
    e_left, e_right = p[LEFT_EYE].mean(0), p[RIGHT_EYE].mean(0)
    d = e_right - e_left
    length = float(np.hypot(*d))
    if length == 0:
        raise ConfigError("similarity_49: both eye centres coincide; the landmarks are degenerate")
    c, s = d / length
    rot = np.array([[c, s], [-s, c]])
    anchors = np.stack([e_left, e_right, p[NOSE_TIP], p[MOUTH_LEFT], p[MOUTH_RIGHT]]) @ rot.T
    lo, hi = anchors.min(0), anchors.max(0)
    centre = (lo + hi) / 2
    span = float((hi - lo).max())
    half = 0.5 * box_enlarge * span
    scale = ((size - 1) / 2) / half
    return np.hstack([scale * rot, (scale * (half - centre))[:, None]])


def transform_points(points, matrix) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (K, 2) points."""
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def warp(image: np.ndarray, matrix, size: int, out: np.ndarray | None = None) -> np.ndarray:
    """Bilinear warp onto S x S with the constant grey border the published code uses
    (into `out`, a uint8 S x S x 3 array, when given)."""
    return cv2.warpAffine(image, np.asarray(matrix, dtype=np.float64), (size, size), dst=out,
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(BORDER, BORDER, BORDER))


# A frame may be decoded at 1/r size when the aligned face then samples it at no more than
# this many aligned pixels per decoded pixel: measured on BP4D-size frames, the aligned face
# stays within a mean absolute difference of 2 grey levels of a full decode
# (tests/test_prepare_speed.py, docs/benchmarks.md).
# 1/8 is left out: libjpeg makes it of the DC terms alone, and small faces then drift past
# that tolerance (3.6 grey levels at 112 px).
DECODE_LIMIT = 1.5
DECODE_SCALES = (4, 2)


def decode_scale(matrix, limit: float = DECODE_LIMIT) -> int:
    """The smallest decode size (1/r, r in 1, 2, 4) whose pixels the warp `matrix` (raw
    frame -> aligned face) magnifies by at most `limit`."""
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    return next((r for r in DECODE_SCALES if scale * r <= limit), 1)


def at_scale(matrix, r: int) -> np.ndarray:
    """The warp `matrix` for the frame decoded at 1/r: its pixel i covers frame pixels
    r*i .. r*i + r - 1, so it sits at r*i + (r - 1)/2 in the frame."""
    m = np.array(matrix, dtype=np.float64)
    if r == 1:
        return m
    m[:, 2] += m[:, :2] @ np.full(2, (r - 1) / 2)
    m[:, :2] *= r
    return m


def last_row(matrix, size: int, r: int = 1) -> int:
    """The last frame row (0-based) that `warp(decoded, at_scale(matrix, r), size)` reads from
    a frame decoded at 1/r: a decoder may stop below it and the face comes out the same.

    The warp is affine, so its source extremes are the corners of the S x S output; bilinear
    reads the row below each sample, and one more row covers OpenCV's 1/32-pixel fixed-point
    coordinates."""
    inv = cv2.invertAffineTransform(at_scale(matrix, r))
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    bottom = float(transform_points(corners, inv)[:, 1].max())
    return max(0, r * (int(np.floor(bottom)) + 2) + r - 1)


def align_face_49(image: np.ndarray, landmarks49, size: int = 256, box_enlarge: float = 2.9
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(aligned RGB uint8 S x S x 3, matrix (2, 3), aligned landmarks (49, 2))."""
    matrix = similarity_49(landmarks49, size, box_enlarge)
    return warp(image, matrix, size), matrix, transform_points(landmarks49, matrix)


def alignment_params(size: int = 256, box_enlarge: float = 2.9) -> dict:
    """The settings a store records; two stores align alike exactly when these are equal."""
    return {"method": METHOD, "size": int(size), "box_enlarge": float(box_enlarge),
            "border": BORDER, "interpolation": "bilinear"}


@dataclass(frozen=True)
class AlignedFace:
    """One frame through the alignment: what prepare stores and what `predict` feeds a model."""

    image: np.ndarray       # uint8 S x S x 3; the grey border colour when no face
    points: np.ndarray      # float32 (49, 2) in aligned pixels; NaN when no face
    matrix: np.ndarray      # float32 (2, 3) raw frame -> aligned image; NaN when no face
    face: bool
    origin: str             # "shipped", "dlib" or "none" (where the landmarks came from)


def _no_face(size: int) -> AlignedFace:
    return AlignedFace(np.full((size, size, 3), BORDER, np.uint8), np.full((49, 2), np.nan, np.float32),
                       np.full((2, 3), np.nan, np.float32), False, "none")


def align_frame(pixels: np.ndarray, landmarks_or_tracker, size: int = 256, box_enlarge: float = 2.9
                ) -> AlignedFace:
    """Align one RGB frame.

    `landmarks_or_tracker`: the frame's shipped landmarks (49, 66 or 68 points, 0-based; NaN
    counts as missing), or a callable taking the frame and returning 68 points or None (e.g.
    `landmarks.LandmarkTracker`), or None. Missing or degenerate landmarks give face=False.
    """
    if callable(landmarks_or_tracker):
        p68 = landmarks_or_tracker(pixels)
        p49, origin = (None if p68 is None else landmarks_68_to_49(p68)), "dlib"
    elif landmarks_or_tracker is None or not np.isfinite(np.asarray(landmarks_or_tracker, np.float64)).all():
        p49, origin = None, "shipped"
    else:
        p49, origin = to_49(landmarks_or_tracker), "shipped"
    if p49 is None:
        return _no_face(size)
    try:
        image, matrix, points = align_face_49(pixels, p49, size, box_enlarge)
    except ConfigError:  # both eye centres on one point: no usable face
        return _no_face(size)
    return AlignedFace(image, points.astype(np.float32), matrix.astype(np.float32), True, origin)
