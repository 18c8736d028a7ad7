"""prepare's short path: each frame decoded only as large as its aligned face needs.

The aligned pixels must stay within a mean absolute difference of 2 grey levels of the same
alignment of a full-resolution decode, on BP4D-size quality-100 frames and on a larger face."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from austack.faces.align import (BORDER, align_face_49, at_scale, decode_scale, landmarks_68_to_49, last_row,
                           similarity_49, transform_points, warp)
from austack.datasets.base import FrameRecord, PixelSource
from austack.faces.decode import decode_frames
from austack.prepare import Job, process_chunk
from austack.store import decode_image

from _bp4d_frames import H, bp4d_frame, write_bp4d_frames

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


def _shifted(folder, dy: int) -> FrameRecord:
    """BP4D frame 0 with its rows rolled by `dy` (the face moved up for dy < 0, down for dy > 0)."""
    frame, p68 = bp4d_frame(0)
    path = folder / f"shift{dy}.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(np.roll(frame, dy, axis=0), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 100])
    return FrameRecord("F001", "T1", 0, PixelSource("image", str(path)), np.zeros(12, np.int8),
                       landmarks=p68 + np.float32([0, dy]))


def test_decoding_down_to_the_face_keeps_the_store_bytes(frames, tmp_path):
    """The short path decodes each JPEG only down to the last row its warp reads; the stored
    face is the same array, byte for byte, as the warp of a whole 1/r decode, whether the face
    sits mid-frame (BP4D), high up (most rows saved) or low (its warp reads past the frame's
    end: nothing to cut). So a store's bytes do not depend on the cut."""
    recs = list(frames) + [_shifted(tmp_path, -300), _shifted(tmp_path, 150)]
    res = process_chunk(Job(recs, "shipped", 256, 2.9, "raw", 95, False, 12))
    lasts = []
    for i, fr in enumerate(recs):
        m = similarity_49(landmarks_68_to_49(fr.landmarks), 256, 2.9)
        r = decode_scale(m)
        flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}[r]
        whole = cv2.imdecode(np.fromfile(fr.source.path, np.uint8), flag)
        expected = cv2.cvtColor(warp(whole, at_scale(m, r), 256), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(res.rows.images[i], expected, err_msg=f"frame {i}")
        lasts.append(last_row(m, 256, r))
        (part, _), = decode_frames([fr.source], [r], bgr=True, rows=[lasts[-1]])
        assert part.shape[0] * r < H if lasts[-1] < H - 32 else part.shape[0] * r >= H
    assert lasts[-2] < 0.65 * H < 0.85 * H < min(lasts[:-2]) and lasts[-1] >= H


def test_last_row_is_the_lowest_row_the_warp_reads():
    """Rows below `last_row` never reach the aligned face: changing them changes nothing."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (400, 300, 3), dtype=np.uint8)
    for angle, zoom in ((0.0, 0.5), (0.3, 0.6), (-0.5, 1.2), (0.15, 0.8)):
        c, s_ = zoom * np.cos(angle), zoom * np.sin(angle)
        m = np.array([[c, s_, -40.0], [-s_, c, -60.0]])
        for r in (1, 2, 4):
            small = img[::r, ::r].copy()
            last = last_row(m, 128, r) // r
            if last + 1 >= small.shape[0]:
                continue
            changed = small.copy()
            changed[last + 1:] = 255 - changed[last + 1:]
            a, b = (warp(x, at_scale(m, r), 128) for x in (small, changed))
            np.testing.assert_array_equal(a, b)
            changed[last - 3:] = 255 - small[last - 3:]     # and it is tight within a few rows
            assert not np.array_equal(warp(changed, at_scale(m, r), 128), a)


def test_prepare_runs_opencv_on_one_thread_and_gives_it_back(fake_raw, tmp_path, monkeypatch):
    """One worker is one core: OpenCV's own threads would have N workers fight over N cores.
    (Forked workers inherit it; `test_prepare.py` checks they never reconfigure it.)"""
    from austack.prepare import prepare

    seen = []
    real_warp = warp

    def spy(*a, **k):
        seen.append(cv2.getNumThreads())
        return real_warp(*a, **k)

    monkeypatch.setattr("austack.prepare.cpu.warp", spy)
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        prepare("test-fake", fake_raw, tmp_path / "one.h5", landmarks="shipped", size=64)
        assert seen and set(seen) == {1}
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)
