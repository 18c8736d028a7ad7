"""Pixel decoding: images, zip members and video frames in order; damage is yielded, not raised."""
from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest

from austack.datasets.base import PixelSource
from austack.datasets.pixels import iter_frames, video_frame_count
from austack.errors import ConfigError, RawDataError
from austack.synth.layouts.disfa import write_video

H, W, T = 96, 128, 8


def flat_frames(n: int):
    """Frame i: grey level 20 * i plus noise, so that its payload outweighs the AVI header and a
    cut file loses frames, not the header."""
    rng = np.random.default_rng(0)
    for i in range(n):
        yield (20 * i + rng.integers(0, 16, (H, W, 3))).astype(np.uint8), np.zeros((68, 2), np.float32)


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, flat_frames(T))
    return path


def level(frame: np.ndarray) -> int:
    return round((float(frame.mean()) - 7.5) / 20)


def test_video_frames_in_order_with_skips(video):
    wanted = [0, 3, 4, 7]
    out = list(iter_frames([PixelSource("video", str(video), index=i) for i in wanted]))
    assert [level(f) for f in out] == wanted
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in out)


def test_going_back_in_a_video_reopens_it(video):
    out = list(iter_frames([PixelSource("video", str(video), index=i) for i in (5, 2)]))
    assert [level(f) for f in out] == [5, 2]


def test_truncated_video_yields_errors_naming_file_and_frame(video, tmp_path):
    cut = tmp_path / "cut.avi"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    counts = video_frame_count(cut, decodable=True)
    assert counts.container == T and 0 < counts.decodable < T
    out = list(iter_frames([PixelSource("video", str(cut), index=i) for i in range(T)]))
    errors = [(i, e) for i, e in enumerate(out) if isinstance(e, Exception)]
    assert len(errors) == T - counts.decodable and all(isinstance(e, RawDataError) for _, e in errors)
    i, e = errors[-1]
    assert str(cut) in str(e) and f"frame {i}" in str(e) and e.path == str(cut)
    assert [level(f) for f in out[: counts.decodable]] == list(range(counts.decodable))


def test_video_frame_count(video, tmp_path):
    assert video_frame_count(video, decodable=True) == (T, T)
    assert video_frame_count(video).decodable is None
    with pytest.raises(RawDataError, match="does not exist"):
        video_frame_count(tmp_path / "none.avi")


def test_missing_video_gives_one_error_per_frame(tmp_path):
    out = list(iter_frames([PixelSource("video", str(tmp_path / "none.avi"), index=i) for i in range(3)]))
    assert all(isinstance(e, RawDataError) and "none.avi" in str(e) for e in out)


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    rgb[:, : W // 2] = (200, 30, 30)                        # a red half, to check channel order
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg at all" * 10)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:-200])
    return good, corrupt, truncated


def test_images_and_damaged_jpgs(images, tmp_path):
    good, corrupt, truncated = images
    out = list(iter_frames([PixelSource("image", str(p)) for p in (good, corrupt, truncated,
                                                                    tmp_path / "absent.jpg", good)]))
    assert isinstance(out[0], np.ndarray) and out[0].shape == (H, W, 3)
    assert out[0][H // 2, 2, 0] > 150 and out[0][H // 2, 2, 2] < 100     # RGB, not BGR
    for bad, e in zip((corrupt, truncated, "absent.jpg"), out[1:4]):
        assert isinstance(e, RawDataError) and str(bad) in str(e)
    assert "truncated JPEG" in str(out[2])
    assert np.array_equal(out[4], out[0])


def test_zip_members_and_reduce(images, tmp_path):
    good, corrupt, _ = images
    archive = tmp_path / "F001.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(good, "F001/T1/0001.jpg")
        z.write(corrupt, "F001/T1/0002.jpg")
    sources = [PixelSource("zip", str(archive), member=m) for m in ("F001/T1/0001.jpg", "F001/T1/0002.jpg",
                                                                      "F001/T1/0003.jpg")]
    full, broken, absent = iter_frames(sources)
    assert np.array_equal(full, next(iter_frames([PixelSource("image", str(good))])))
    assert "F001/T1/0002.jpg" in str(broken) and "0003.jpg" in str(absent)
    half = next(iter_frames(sources[:1], reduce=2))
    assert half.shape == (H // 2, W // 2, 3)
    eighth = next(iter_frames(sources[:1], reduce=8))
    assert eighth.shape == (-(-H // 8), -(-W // 8), 3)


def test_reduce_applies_to_video_frames_too(video):
    [frame] = iter_frames([PixelSource("video", str(video), index=1)], reduce=4)
    assert frame.shape == (-(-H // 4), -(-W // 4), 3) and level(frame) == 1


def test_bad_reduce_is_a_config_error(video):
    with pytest.raises(ConfigError, match="reduce must be one of"):
        list(iter_frames([PixelSource("video", str(video), index=0)], reduce=3))
