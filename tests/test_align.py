"""The 49-point alignment: the spec's closed form, point selection on real dlib output, pixels."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from austack.faces.align import (BORDER, IDX_68_TO_49, align_face_49, align_frame, landmarks_66_to_49,
                           landmarks_68_to_49, similarity_49, transform_points)
from austack.errors import ConfigError

from _prepare_fake import astronaut_68


@pytest.fixture(scope="module")
def astro():
    img, p68 = astronaut_68()
    assert p68 is not None, "dlib found no face on the astronaut photo"
    return img, p68


def test_the_stored_astronaut_landmarks_are_what_dlib_finds():
    """tests/data/astronaut_68.npy stands in for dlib where dlib is not installed."""
    from austack.faces.landmarks import detect_68

    img, stored = astronaut_68()
    np.testing.assert_array_equal(detect_68(img), stored)


def _anchor_box(points49: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    anchors = np.stack([points49[19:25].mean(0), points49[25:31].mean(0), points49[13], points49[31], points49[37]])
    return anchors.min(0), anchors.max(0)


def test_68_to_49_picks_the_spec_indices_on_dlib_output(astro):
    _, p68 = astro
    p49 = landmarks_68_to_49(p68)
    expected = [k + 17 if k <= 42 else k + 18 if k <= 45 else k + 19 for k in range(49)]
    assert IDX_68_TO_49.tolist() == expected
    np.testing.assert_array_equal(p49, p68[expected])
    # Anatomy on the real photo: brows above the eyes, eyes above the nose tip above the mouth,
    # the image-left eye left of the image-right eye, mouth corners at both ends of the lip.
    brows, eye_l, eye_r = p49[0:10], p49[19:25].mean(0), p49[25:31].mean(0)
    assert brows[:, 1].max() < min(eye_l[1], eye_r[1])
    assert eye_l[0] < eye_r[0]
    assert max(eye_l[1], eye_r[1]) < p49[13, 1] < p49[31:49, 1].min() + 5
    lip = p49[31:43]
    assert p49[31, 0] == lip[:, 0].min() and p49[37, 0] == lip[:, 0].max()
    # The inner-mouth corners 60 and 64 of the 68 are not among the 49.
    assert not {60, 64} & set(expected)


def test_66_to_49_equals_68_to_49_and_never_takes_68(astro):
    _, p68 = astro
    p66 = np.delete(p68, [60, 64], axis=0)
    np.testing.assert_array_equal(landmarks_66_to_49(p66), landmarks_68_to_49(p68))
    with pytest.raises(ConfigError, match=r"\(66, 2\)"):
        landmarks_66_to_49(p68)
    with pytest.raises(ConfigError, match=r"\(68, 2\)"):
        landmarks_68_to_49(p66)


@pytest.mark.parametrize("size,box_enlarge", [(256, 2.9), (200, 2.9), (200, 2.8), (112, 2.0)])
def test_box_centre_and_side(astro, size, box_enlarge):
    _, p68 = astro
    rng = np.random.default_rng(size)
    for _ in range(5):
        # an arbitrary similarity of the face: rotation, scale, shift
        a, k = rng.uniform(-0.6, 0.6), rng.uniform(0.5, 2.0)
        r = k * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        p49 = landmarks_68_to_49(p68) @ r.T + rng.uniform(-100, 100, 2)
        out = transform_points(p49, similarity_49(p49, size, box_enlarge))
        lo, hi = _anchor_box(out)
        np.testing.assert_allclose((lo + hi) / 2, [(size - 1) / 2] * 2, atol=1e-9)
        assert (hi - lo).max() == pytest.approx((size - 1) / box_enlarge, abs=1e-9)
        eye_l, eye_r = out[19:25].mean(0), out[25:31].mean(0)
        assert eye_l[1] == pytest.approx(eye_r[1], abs=1e-9)  # eye line level
        assert eye_l[0] < eye_r[0]


def test_degenerate_landmarks_raise():
    with pytest.raises(ConfigError, match="eye centres coincide"):
        similarity_49(np.zeros((49, 2)))
    with pytest.raises(ConfigError, match="NaN"):
        similarity_49(np.full((49, 2), np.nan))


def test_pixels_follow_the_landmarks(astro):
    """Dots painted at landmark positions are found at the transformed positions after the warp."""
    img, p68 = astro
    p49 = landmarks_68_to_49(p68) + 0.5  # off the pixel grid on purpose
    picks = [0, 9, 13, 19, 28, 31, 37, 45]
    canvas = np.zeros((600, 700, 3), np.uint8)
    for i in picks:
        cv2.circle(canvas, (int(round(p49[i, 0] * 16)), int(round(p49[i, 1] * 16))), 16 * 2, (255, 255, 255), -1,
                   lineType=cv2.LINE_AA, shift=4)
    aligned, m, out = align_face_49(canvas, p49, 256, 2.9)
    assert aligned.shape == (256, 256, 3) and aligned.dtype == np.uint8
    np.testing.assert_allclose(out, transform_points(p49, m))
    gray = aligned[..., 0].astype(np.float64)
    ys, xs = np.mgrid[:256, :256]
    for i in picks:
        near = (np.hypot(xs - out[i, 0], ys - out[i, 1]) < 5) * gray
        centroid = np.array([(near * xs).sum(), (near * ys).sum()]) / near.sum()
        assert np.hypot(*(centroid - out[i])) < 0.35, f"dot of landmark {i} moved"


def test_border_is_grey(astro):
    img, p68 = astro
    crop = img[110:180, 190:260]  # the middle of the face: the 2.9x box reaches outside on every side
    aligned, _, _ = align_face_49(crop, landmarks_68_to_49(p68) - [190, 110], 256, 2.9)
    assert (aligned[0, 0] == BORDER).all() and (aligned[-1, -1] == BORDER).all()


def test_bench_align_bp4d_frame(benchmark, astro):
    img, p68 = astro
    frame = cv2.resize(img, (1392, 1040))
    p49 = landmarks_68_to_49(p68) * [1392 / 512, 1040 / 512]
    aligned, _, _ = benchmark(align_face_49, frame, p49, 256, 2.9)
    assert aligned.shape == (256, 256, 3)


def test_align_frame_with_shipped_points_or_a_tracker(astro):
    img, p68 = astro
    ref, m, pts = align_face_49(img, landmarks_68_to_49(p68), 64, 2.9)
    for source, origin in ((p68, "shipped"), (landmarks_68_to_49(p68), "shipped"), (lambda px: p68, "dlib")):
        a = align_frame(img, source, 64, 2.9)
        assert a.face and a.origin == origin
        np.testing.assert_array_equal(a.image, ref)
        np.testing.assert_array_equal(a.points, pts.astype(np.float32))
        np.testing.assert_array_equal(a.matrix, m.astype(np.float32))


@pytest.mark.parametrize("source", [None, "nan", "tracker-none", "degenerate"])
def test_align_frame_without_a_usable_face(astro, source):
    img, p68 = astro
    given = {None: None, "nan": np.full((68, 2), np.nan), "tracker-none": lambda px: None,
             "degenerate": np.zeros((68, 2))}[source]
    a = align_frame(img, given, 32, 2.9)
    assert not a.face and (a.image == BORDER).all() and a.image.shape == (32, 32, 3)
    assert np.isnan(a.points).all() and np.isnan(a.matrix).all()
