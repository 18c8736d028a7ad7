"""prepare's short path: each frame decoded only as large as its aligned face needs.

The aligned pixels must stay within a mean absolute difference of 2 grey levels of the same
alignment of a full-resolution decode, on BP4D-size quality-100 frames and on a larger face."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from austack.align import (BORDER, align_face_49, at_scale, decode_scale, landmarks_68_to_49, similarity_49,
                           transform_points)
from austack.datasets.base import FrameRecord, PixelSource
from austack.datasets.pixels import decode_frames
from austack.prepare import Job, process_chunk
from austack.store import decode_image

from _bp4d_frames import write_bp4d_frames

TOLERANCE = 2.0   # grey levels, mean absolute difference


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return write_bp4d_frames(tmp_path_factory.mktemp("bp4d"), 3)


def _full(fr: FrameRecord, size: int) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(fr.source.path), cv2.COLOR_BGR2RGB)
    return align_face_49(rgb, landmarks_68_to_49(fr.landmarks), size)[0]


def test_the_scale_follows_the_face_size():
    assert decode_scale(np.diag([2.0, 2.0, 1.0])[:2]) == 1      # a face magnified: full size
    assert decode_scale(np.diag([0.7, 0.7, 1.0])[:2]) == 2
    assert decode_scale(np.diag([0.37, 0.37, 1.0])[:2]) == 4
    assert decode_scale(np.diag([0.01, 0.01, 1.0])[:2]) == 4    # 1/8 is never used


def test_the_scaled_matrix_lands_on_the_same_frame_points():
    """A decoded-at-1/r pixel i sits at r*i + (r-1)/2 in the frame."""
    m = np.array([[0.3, 0.1, -20.0], [-0.1, 0.3, 15.0]])
    for r in (1, 2, 4, 8):
        red = np.array([[3.0, 5.0], [100.0, 7.0]])
        full = r * red + (r - 1) / 2
        np.testing.assert_allclose(transform_points(red, at_scale(m, r)), transform_points(full, m))


def test_bp4d_frames_decode_at_a_quarter_within_tolerance(frames):
    """At BP4D's face size the 256 px face needs a 1/4 decode; its pixels stay within 2 grey levels."""
    res = process_chunk(Job(frames, "shipped", 256, 2.9, "raw", 95, False, 12))
    for i, fr in enumerate(frames):
        m = similarity_49(landmarks_68_to_49(fr.landmarks), 256, 2.9)
        assert decode_scale(m) == 4
        mad = np.abs(res.rows.images[i].astype(int) - _full(fr, 256)).mean()
        assert mad < TOLERANCE, (i, mad)
        np.testing.assert_allclose(res.rows.matrix[i], m, rtol=1e-6, atol=1e-4)   # stored: the full-frame warp


@pytest.mark.parametrize("size", [112, 512])
def test_other_sizes_pick_their_own_scale_within_tolerance(frames, size):
    fr = frames[0]
    m = similarity_49(landmarks_68_to_49(fr.landmarks), size, 2.9)
    r = decode_scale(m)
    assert r == (4 if size == 112 else 2)
    (bgr, used), = decode_frames([fr.source], [r], bgr=True)
    assert used == r and bgr.shape[:2] == (-(-1040 // r), -(-1392 // r))
    aligned = cv2.warpAffine(bgr, at_scale(m, r), (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(BORDER,) * 3)
    mad = np.abs(cv2.cvtColor(aligned, cv2.COLOR_BGR2RGB).astype(int) - _full(fr, size)).mean()
    assert mad < TOLERANCE, mad


def test_jpeg_rows_are_the_bgr_warp_encoded(frames):
    """The JPEG path encodes the BGR warp directly; decoding a row gives the raw path's face."""
    jpeg = process_chunk(Job(frames[:1], "shipped", 256, 2.9, "jpeg", 95, False, 12))
    raw = process_chunk(Job(frames[:1], "shipped", 256, 2.9, "raw", 95, False, 12))
    face = decode_image(jpeg.rows.images[0], "jpeg")
    assert np.abs(face.astype(int) - raw.rows.images[0]).mean() < 2.0   # JPEG quality 95 loss only


def test_png_frames_are_decoded_whole(tmp_path, frames):
    """Only JPEGs have a reduced decode: a PNG comes whole, scale 1, and aligns the same."""
    png = tmp_path / "f.png"
    cv2.imwrite(str(png), cv2.imread(frames[0].source.path))
    (bgr, used), = decode_frames([PixelSource("image", str(png))], [4], bgr=True)
    assert used == 1 and bgr.shape == (1040, 1392, 3)
