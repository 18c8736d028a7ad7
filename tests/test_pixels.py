"""Pixel decoding: images, zip members and video frames in order; damage is yielded, not raised."""
from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest

from austack.datasets.base import PixelSource
from austack.faces.decode import FrameError, decode_frames, group_frame_errors, iter_frames, video_frame_count
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
    # The last packet is cut: the demuxer marks it corrupt, so it is one failed frame (not a
    # partly grey one), and the frames after it are missing.
    flagged = [i for i, e in errors if "FFmpeg:" in str(e)]
    assert flagged == [counts.decodable]
    assert len(errors) == T - counts.decodable
    assert all(isinstance(e, FrameError) and e.source.index == i for i, e in errors)
    i, e = errors[-1]
    assert str(cut) in str(e) and f"frame {i}" in str(e) and e.path == str(cut)
    assert f"after {counts.decodable + 1} frames of the {T} its header claims" in str(e)
    good = counts.decodable
    assert [level(f) for f in out[:good]] == list(range(good))


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


def corrupt_frame(video, k: int, tmp_path):
    """A copy of `video` whose k-th frame has 100 bytes of its JPEG scan overwritten."""
    data = bytearray(video.read_bytes())
    chunk = [i for i in range(len(data)) if data[i:i + 4] == b"00dc"][1:][k]   # [0] is in the header
    scan = data.index(b"\xff\xda", chunk) + 20
    data[scan:scan + 100] = bytes(0xFF if j % 3 else 0 for j in range(100))
    path = tmp_path / "middle.avi"
    path.write_bytes(bytes(data))
    return path


def test_damaged_middle_frame_is_flagged_and_ffmpeg_stays_off_the_terminal(video, tmp_path, capfd):
    bad = corrupt_frame(video, 3, tmp_path)
    out = list(iter_frames([PixelSource("video", str(bad), index=i) for i in range(T)]))
    failed = [(i, e) for i, e in enumerate(out) if isinstance(e, Exception)]
    assert [i for i, _ in failed] == [3]
    assert "FFmpeg:" in str(failed[0][1]) and str(bad) in str(failed[0][1])
    assert [level(f) for i, f in enumerate(out) if i != 3] == [0, 1, 2, 4, 5, 6, 7]
    cut = tmp_path / "cut.avi"
    cut.write_bytes(video.read_bytes()[: len(video.read_bytes()) * 6 // 10])
    list(iter_frames([PixelSource("video", str(cut), index=i) for i in range(T)]))
    video_frame_count(cut, decodable=True)
    assert capfd.readouterr().err == ""            # FFmpeg's messages went into the errors


def test_failures_are_grouped_per_video_and_cause(video, tmp_path, images):
    cut = tmp_path / "cut.avi"
    cut.write_bytes(video.read_bytes()[: len(video.read_bytes()) * 6 // 10])
    sources = [PixelSource("video", str(cut), index=i) for i in range(T)]
    _, corrupt, _ = images
    sources.append(PixelSource("image", str(corrupt)))
    failed = [(100 + i, e) for i, e in enumerate(iter_frames(sources)) if isinstance(e, Exception)]
    anomalies = group_frame_errors(failed)
    videos = [a for a in anomalies if a.path == str(cut)]
    assert sum(a.count for a in videos) == len(failed) - 1 and len(videos) == 2   # cut packet, then the end
    ends = next(a for a in videos if "video ends" in a.detail)
    assert ends.kind == "unreadable" and ends.count > 1 and "kept with face=0" in ends.detail
    [single] = [a for a in anomalies if a.path != str(cut)]
    assert single.path == str(corrupt) and single.count == 1 and f"frame {100 + T}" in single.detail


def test_zero_byte_image_and_zip_member_are_unreadable_frames(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    archive = tmp_path / "F001.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("F001/T1/0001.jpg", b"")
    out = list(iter_frames([PixelSource("image", str(empty)),
                            PixelSource("zip", str(archive), member="F001/T1/0001.jpg")], reduce=2))
    assert all(isinstance(e, FrameError) and "0 bytes" in str(e) for e in out)
    assert out[0].path == str(empty) and out[1].path == str(archive)


# --- decoding only down to the last row a caller reads (`decode_frames(rows=...)`) ---

def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A BGR frame with detail at every scale, so that entropy data fills every MCU."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8), (w, h))
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def jpeg_file(path, bgr, **params) -> PixelSource:
    flags = [cv2.IMWRITE_JPEG_QUALITY, 100]
    for key, value in params.items():
        flags += [getattr(cv2, f"IMWRITE_JPEG_{key.upper()}"), value]
    cv2.imwrite(str(path), bgr, flags)
    return PixelSource("image", str(path))


@pytest.mark.parametrize("params", [{}, {"sampling_factor": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444},
                                    {"rst_interval": 3}, {"grey": True}], ids=["420", "444", "restart", "grey"])
def test_cut_decodes_match_a_whole_decode_row_for_row(tmp_path, capfd, params):
    """Every row down to `last` is bit for bit that of the whole decode, at every scale; the
    frame comes back shorter, and libjpeg's note about the skipped rest stays off stderr."""
    bgr = textured(200, 160)
    if params.pop("grey", False):
        bgr = cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    src = jpeg_file(tmp_path / "f.jpg", bgr, **params)
    for r in (1, 2, 4, 8):
        (whole, _), = decode_frames([src], [r], bgr=True)
        for last in (0, 7, 8, 50, 111, 150, 170):
            (part, used), = decode_frames([src], [r], bgr=True, rows=[last])
            keep = last // r + 1
            assert used == r and keep <= part.shape[0] < whole.shape[0], (r, last, part.shape)
            assert np.array_equal(part[:keep], whole[:keep]), (r, last)
    assert capfd.readouterr().err == ""


def test_cut_past_the_end_and_other_jpegs_decode_whole(tmp_path):
    """No row to save, a progressive JPEG or a PNG: the whole frame, as without `rows`."""
    bgr = textured(96, 128)
    sources = [jpeg_file(tmp_path / "a.jpg", bgr), jpeg_file(tmp_path / "p.jpg", bgr, progressive=1)]
    cv2.imwrite(str(tmp_path / "b.png"), bgr)
    sources.append(PixelSource("image", str(tmp_path / "b.png")))
    for src, last in zip(sources + sources[:1], [10**6, 10, 10, 95]):
        (part, _), = decode_frames([src], [1], bgr=True, rows=[last])
        (whole, _), = decode_frames([src], [1], bgr=True)
        assert np.array_equal(part, whole), (src.path, last)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8, None], ids=["upright", "180", "90", "270", "unparsable"])
def test_an_exif_orientation_keeps_the_rows_of_the_turned_image(tmp_path, orientation):
    """OpenCV turns an image by its EXIF orientation, so the file's rows are not the image's:
    such a file is decoded whole (an upright one is still cut)."""
    from PIL import Image

    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    blob = exif.tobytes() if orientation is not None else b"Exif\0\0XX\0\0"
    path = tmp_path / "turned.jpg"
    Image.fromarray(textured(64, 96)).save(path, "JPEG", quality=95, exif=blob)
    src = PixelSource("image", str(path))
    (whole, _), = decode_frames([src], [1], bgr=True)
    (part, _), = decode_frames([src], [1], bgr=True, rows=[20])
    if orientation == 1:
        assert part.shape[0] < whole.shape[0] and np.array_equal(part[:21], whole[:21])
    else:
        assert np.array_equal(part, whole)


def test_cut_zip_members_and_reused_buffer(tmp_path):
    """A zip member is cut on a copy; the file buffer patched in place serves the next file whole."""
    a, b = textured(200, 160, 1), textured(200, 160, 2)
    src_a, src_b = jpeg_file(tmp_path / "a.jpg", a), jpeg_file(tmp_path / "b.jpg", b)
    archive = tmp_path / "F001.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(src_a.path, "a.jpg")
    member = PixelSource("zip", str(archive), member="a.jpg")
    out = [p for p, _ in decode_frames([src_a, src_b, member, src_a], [1] * 4, bgr=True,
                                       rows=[40, None, 40, None])]
    whole_a, whole_b = cv2.imread(src_a.path), cv2.imread(src_b.path)
    assert out[0].shape[0] < 200 and np.array_equal(out[0][:41], whole_a[:41])
    assert np.array_equal(out[1], whole_b) and np.array_equal(out[3], whole_a)
    assert np.array_equal(out[2], out[0])
    assert (tmp_path / "a.jpg").read_bytes()[:200] == cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, 100]
                                                                   )[1].tobytes()[:200]   # file untouched


def test_cut_survives_damaged_headers(tmp_path):
    """Headers cut short or with lengths that lie: a frame or a FrameError, never a crash,
    and the damage is reported as without `rows`."""
    good = jpeg_file(tmp_path / "g.jpg", textured(96, 128))
    data = (tmp_path / "g.jpg").read_bytes()
    rng = np.random.default_rng(3)
    sof = data.find(b"\xff\xc0")
    paths = []
    for k in range(40):
        bad = bytearray(data)
        if k < 10:
            bad = bad[:sof + 4 * k + 3] + data[-2:]               # header cut, end marker kept
        else:
            at = int(rng.integers(2, data.find(b"\xff\xda") + 12))
            bad[at] = int(rng.integers(0, 256))                  # one header byte changed
        paths.append(tmp_path / f"bad{k}.jpg")
        paths[-1].write_bytes(bytes(bad))
    sources = [PixelSource("image", str(p)) for p in paths] + [good]
    with_cut = list(decode_frames(sources, [2] * len(sources), bgr=True, rows=[30] * len(sources)))
    plain = list(decode_frames(sources, [2] * len(sources), bgr=True))
    for (cut, _), (whole, _), path in zip(with_cut, plain, paths):
        assert isinstance(cut, Exception) == isinstance(whole, Exception), path
        if isinstance(cut, FrameError):
            assert str(path) in str(cut)
    assert isinstance(with_cut[-1][0], np.ndarray) and with_cut[-1][0].shape[0] < 48


def test_a_truncated_video_is_one_grouped_anomaly_in_a_prepared_chunk(video, tmp_path):
    """prepare reports a cut video once per cause, with the count, not once per frame."""
    from austack.datasets.base import FrameRecord
    from austack.prepare import Job, process_chunk

    cut = tmp_path / "cut.avi"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    frames = [FrameRecord("S1", "T1", i, PixelSource("video", str(cut), index=i), np.zeros(2, np.int8))
              for i in range(T)]
    result = process_chunk(Job(frames, "dlib", 64, 2.9, "raw", 90, False, 2))
    unreadable = [a for a in result.rows.anomalies if a.kind == "unreadable"]
    lost = sum(a.count for a in unreadable)
    assert 0 < lost < T and len(unreadable) <= 2      # one per cause (cut packet, missing frames)
    assert all(a.path == str(cut) and "kept with face=0" in a.detail for a in unreadable)


def test_fuzzed_exif_blocks_never_crash_the_header_scan(tmp_path):
    """Random bytes, lengths that lie and cut-short entries in the EXIF segment: a yes or no
    from `exif_turned`, and a cut decode is then a frame or a FrameError, never a crash."""
    from PIL import Image

    from austack.faces.decode import exif_turned

    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "camera"
    path = tmp_path / "t.jpg"
    Image.fromarray(textured(48, 64)).save(path, "JPEG", quality=90, exif=exif.tobytes())
    data = path.read_bytes()
    app1 = data.find(b"\xff\xe1")
    end = app1 + 2 + int.from_bytes(data[app1 + 2:app1 + 4], "big")
    rng = np.random.default_rng(5)
    for k in range(300):
        raw = bytearray(data)
        for _ in range(rng.integers(1, 6)):
            raw[rng.integers(app1 + 4, end)] = rng.integers(0, 256)
        if k % 3 == 0:   # an entry count or offset that points past the segment
            raw[app1 + 18:app1 + 20] = bytes(rng.integers(0, 256, 2, dtype=np.uint8))
        assert exif_turned(memoryview(raw)) in (True, False)
        path.write_bytes(bytes(raw))
        (part, _), = decode_frames([PixelSource("image", str(path))], [1], bgr=True, rows=[10])
        assert isinstance(part, (np.ndarray, FrameError))


def _h264_mp4(path, n: int = 30, rotation: int = 0, start_before: int = 0):
    """An H.264 mp4 of `n` moving frames (B-frames on), written with PyAV; `rotation` sets its
    display matrix; `start_before` > 0 re-muxes it so its edit list starts that many frames in
    (the demuxer then marks those packets to be discarded, as a trimmed phone video does)."""
    av = pytest.importorskip("av")
    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV build has no H.264 encoder")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    whole = path.with_suffix(".whole.mp4")
    with av.open(str(whole), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.options = 160, 120, "yuv420p", {"bf": "2"}
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(n):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.roll(base, 3 * i, axis=1), format="rgb24")))
        out.mux(stream.encode())
    if not start_before:
        whole.rename(path)
        return path
    with av.open(str(whole)) as src, av.open(str(path), "w") as dst:
        ist = src.streams.video[0]
        ost = dst.add_stream_from_template(ist)
        shift = start_before * int(1 / (ist.time_base * 25))
        for packet in src.demux(ist):
            if packet.dts is None:
                continue
            packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, ost
            dst.mux(packet)
    return path


def test_an_edit_list_s_discarded_frames_are_not_reported_as_missing(tmp_path):
    path = _h264_mp4(tmp_path / "trimmed.mp4", 30, start_before=5)
    out = list(iter_frames([PixelSource("video", str(path), index=i) for i in range(26)]))
    assert all(isinstance(f, np.ndarray) for f in out[:25])
    assert isinstance(out[25], FrameError) and "the video ends" in str(out[25])
    assert "its header claims" not in str(out[25])       # not truncated: the edit list says so
    assert video_frame_count(path, decodable=True).decodable == 25


def test_a_rotated_video_comes_out_as_opencv_shows_it(tmp_path):
    path = _h264_mp4(tmp_path / "turned.mp4", 6, rotation=90)
    ours = list(iter_frames([PixelSource("video", str(path), index=i) for i in range(6)]))
    cap, theirs = cv2.VideoCapture(str(path)), []
    while (got := cap.read())[0]:
        theirs.append(cv2.cvtColor(got[1], cv2.COLOR_BGR2RGB))
    assert len(theirs) == 6 and ours[0].shape == (160, 120, 3)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_a_jpeg_libjpeg_warns_about_is_a_reported_damaged_frame(tmp_path):
    """Scan data overwritten mid-file: libjpeg conceals it and warns; the frame is reported
    (it used to be kept, the warning only printed). Trailing bytes before the end marker are
    harmless and kept."""
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    data = bytearray(buf.tobytes())
    scan = data.index(b"\xff\xda") + 40
    data[scan:scan + 30] = b"\xff\xd0" * 15           # restart markers where none belong
    bad, padded = tmp_path / "bad.jpg", tmp_path / "padded.jpg"
    bad.write_bytes(bytes(data))
    whole = buf.tobytes()
    padded.write_bytes(whole[:-2] + b"\x00" * 16 + whole[-2:])
    out = list(iter_frames([PixelSource("image", str(p)) for p in (bad, padded)]))
    assert isinstance(out[0], FrameError) and "libjpeg says" in str(out[0]) and str(bad) in str(out[0])
    assert np.array_equal(out[1], cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
