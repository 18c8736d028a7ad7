"""Decoding the pixels that readers point at (`PixelSource`), for `prepare` and `predict`.

Readers only say where a frame is; this module turns a list of sources into RGB uint8 arrays,
in order, doing as little work as it can: each video is opened once and read forward (only the
frames asked for are converted to RGB), each zip archive is opened once, and JPEGs are decoded at
reduced size by libjpeg-turbo itself when `reduce` > 1.

A frame that cannot be decoded does not stop the stream: its place holds a `FrameError` (a
`RawDataError`) naming the file and the frame, so the caller can count it and report it;
`group_frame_errors` turns a session's failures into one anomaly per file and cause, so a
damaged video is one line with a count, not one line per frame.

A frame's fate is decided by the decoders' own per-call results, never by text on the process's
stderr (which other threads, a progress bar or a user's logging share): videos are decoded with
PyAV, whose decode call raises for a packet the decoder rejects (FFmpeg's `err_detect=explode`)
and whose frames carry FFmpeg's corrupt flag; JPEGs with simplejpeg (libjpeg-turbo's TurboJPEG),
which returns libjpeg's first warning with the decoded pixels. Neither prints anything, so
nothing is redirected and nothing another thread writes is ever taken for a decoder's message.
"""
from __future__ import annotations

import os
import re
import zipfile
from typing import Iterable, Iterator, NamedTuple

import av
import cv2
import numpy as np
import simplejpeg

from ..errors import ConfigError, RawDataError
from ..records import Anomaly, PixelSource

# cv2 flag per reduction factor: libjpeg decodes at 1/2, 1/4 or 1/8 scale directly.
_IMREAD_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}

_JPEG_START, _JPEG_SCAN, _JPEG_END = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"


class FrameCount(NamedTuple):
    container: int | None   # what the container header claims (None: it does not say)
    decodable: int | None   # frames that actually decode (None: not counted)


class FrameError(RawDataError):
    """A frame that could not be decoded: `source` says which, `reason` why (the same text for
    every frame that failed for the same cause, so failures can be grouped)."""

    def __init__(self, message: str, source: PixelSource, reason: str):
        super().__init__(message, path=source.path)
        self.source, self.reason = source, reason


def video_frame_count(path: str | os.PathLike, decodable: bool = False) -> FrameCount:
    """Frame count of a video: the container's claim, and with `decodable=True` the number of
    frames that decode without an error (reads the whole file). Raises `RawDataError` if it
    cannot be opened."""
    cursor = _VideoCursor(str(path))
    try:
        if cursor.container is None:
            raise RawDataError(cursor.ended, path=str(path))
        n = None
        if decodable:
            n = sum(1 for item in cursor.frames if not isinstance(item, str))
        return FrameCount(cursor.claimed or None, n)
    finally:
        cursor.close()


def group_frame_errors(failed: Iterable[tuple[int, Exception]]) -> list[Anomaly]:
    """(frame number, error) pairs of one session -> `unreadable` anomalies: one per video and
    cause with a count and the frames, one per other file (an image or zip member each)."""
    groups: dict[tuple[str, str], list[int]] = {}
    singles: list[Anomaly] = []
    for frame, e in failed:
        if isinstance(e, FrameError) and e.source.kind == "video":
            groups.setdefault((e.source.path, e.reason), []).append(frame)
        else:
            where = e.source.describe() if isinstance(e, FrameError) else (getattr(e, "path", None) or "?")
            singles.append(Anomaly("unreadable", where, f"{e}; frame {frame} kept with face=0"))
    grouped = [Anomaly("unreadable", path, f"{len(frames)} frame(s) could not be decoded ({reason}); frames "
                       f"{_span(frames)} kept with face=0", len(frames))
               for (path, reason), frames in groups.items()]
    return grouped + singles


def _span(frames: list[int], shown: int = 10) -> str:
    text = ", ".join(map(str, frames[:shown]))
    return text + (f" ... ({len(frames)} in all)" if len(frames) > shown else "")


def iter_frames(sources: list[PixelSource], reduce: int = 1) -> Iterator[np.ndarray | Exception]:
    """One RGB uint8 (H, W, 3) array per source, in order, or a `RawDataError` in its place.

    `reduce` (1, 2, 4 or 8) shrinks every frame by that factor (sizes rounded up, as libjpeg does).
    Frames of one video should come in increasing index order; going back reopens the video.
    """
    if reduce not in _IMREAD_FLAGS:
        raise ConfigError(f"reduce must be one of {sorted(_IMREAD_FLAGS)}, got {reduce!r}")
    for pixels, _ in decode_frames(sources, [reduce] * len(sources), every_format=True):
        yield pixels


def decode_frames(sources: list[PixelSource], scales: list[int], *, bgr: bool = False,
                  every_format: bool = False, rows: list[int | None] | None = None
                  ) -> Iterator[tuple[np.ndarray | Exception, int]]:
    """(pixels or a `RawDataError`, the scale they were decoded at) per source, in order.

    `scales[i]` (1, 2, 4 or 8) asks for source i at 1/scale size; only JPEGs are decoded
    smaller (by libjpeg's DCT scaling, which skips most of the work) unless `every_format`;
    other frames come at full size, scale 1. Pixel i of a frame at scale r covers frame
    pixels r*i .. r*i + r - 1. `bgr` leaves OpenCV's channel order (saves a conversion).
    Image files are read into one reused buffer.

    `rows[i]`, when given, is the last frame row the caller reads of source i: a sequential
    JPEG is then decoded only down to it (`_cut_height`), so the frame may come back shorter;
    every row down to `rows[i]` is bit for bit that of a whole decode.
    """
    video: _VideoCursor | None = None
    archive: zipfile.ZipFile | None = None
    archive_error: Exception | None = None
    buffer = _FileBuffer()
    try:
        for src, scale, last in zip(sources, scales, rows or [None] * len(sources)):
            if src.kind == "video":
                if video is None or video.path != src.path or src.index < video.position:
                    if video is not None:
                        video.close()
                    video = _VideoCursor(src.path)
                scale = scale if every_format else 1   # a video frame is decoded whole anyway
                yield video.read(src.index, scale, bgr), scale
            elif src.kind == "zip":
                if archive is None or archive.filename != src.path:
                    if archive is not None:
                        archive.close()
                    archive, archive_error = _open_zip(src.path)
                if archive_error is not None:
                    yield _error(src, f"not a readable zip archive: {archive_error}"), 1
                    continue
                try:
                    data = archive.read(src.member)
                except (KeyError, OSError, zipfile.BadZipFile, EOFError) as e:
                    yield _error(src, str(e)), 1
                    continue
                yield _decode(data, len(data), scale, src, bgr, every_format, last)
            elif src.kind == "image":
                try:
                    data, n = buffer.read(src.path)
                except OSError as e:
                    yield _error(src, str(e)), 1
                    continue
                yield _decode(data, n, scale, src, bgr, every_format, last)
            else:
                yield _error(src, f"unknown pixel source kind {src.kind!r}"), 1
    finally:
        if video is not None:
            video.close()
        if archive is not None:
            archive.close()


class _FileBuffer:
    """One growing bytearray that every image file is read into (no allocation per frame)."""

    def __init__(self) -> None:
        self.data = bytearray(1 << 20)

    def read(self, path: str) -> tuple[bytes | bytearray, int]:
        """(the buffer, how many of its bytes the file filled)."""
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            if size + 1 > len(self.data):
                self.data = bytearray(max(size + 1, 2 * len(self.data)))
            view = memoryview(self.data)
            n = 0
            while n <= size and (got := f.readinto(view[n:size + 1])):
                n += got
            if n > size:   # the file grew since fstat: read it whole, once, the slow way
                whole = bytes(view[:n]) + f.read()
                return whole, len(whole)
        return self.data, n


def _error(src: PixelSource, reason: str) -> FrameError:
    return FrameError(f"cannot read {src.describe()}: {reason}", src, reason)


def jpeg_complete(data, n: int) -> bool:
    """Whether the first `n` bytes of a JPEG end as a whole file does: an end marker after a
    scan and none after it (entropy-coded data cannot hold one; searched from the end)."""
    end = data.rfind(_JPEG_END, 0, n)
    return end >= 0 and data.find(_JPEG_SCAN, end, n) < 0 and data.find(_JPEG_SCAN, 0, end) >= 0


def _decode(data, n: int, scale: int, src: PixelSource, bgr: bool, every_format: bool,
            last: int | None) -> tuple[np.ndarray | RawDataError, int]:
    """The first `n` bytes of `data` decoded at 1/`scale` (JPEG only unless `every_format`),
    down to frame row `last` or further (None: every row)."""
    if not n:   # cv2.imdecode asserts on an empty buffer
        return FrameError(f"empty image {src.describe()} (0 bytes); re-extract or re-download it", src,
                          "empty file (0 bytes)"), 1
    # libjpeg fills a cut-off JPEG with grey and only warns; a complete one has an end marker
    # after its last scan (entropy-coded data cannot contain one), so check that first: the
    # last end marker, with a scan before it and none after (searched from the end: cheap).
    jpeg = data.startswith(_JPEG_START)
    if jpeg:
        if not jpeg_complete(data, n):
            return FrameError(f"truncated JPEG {src.describe()} (no end marker after the last scan); "
                              f"re-extract or re-download it", src, "truncated JPEG"), 1
    scale = scale if jpeg or every_format else 1
    pixels = why = None
    if jpeg:
        shorter = _cut_height(data, n, last) if last is not None else None
        got = _turbo_decode(data if shorter is None else shorter, n, scale, bgr,
                            _SKIPPED_REST if shorter is not None else _TRAILING_BYTES)
        if isinstance(got, str):
            return FrameError(f"damaged JPEG {src.describe()} ({n} bytes): libjpeg says \"{got}\"; "
                              f"re-extract or re-download it", src, f"damaged JPEG: {got}"), 1
        pixels = got
    if pixels is None:   # not a JPEG, or one TurboJPEG does not take (CMYK, EXIF-turned, 12-bit)
        try:
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8, count=n), _IMREAD_FLAGS[scale])
        except cv2.error as e:
            why = " ".join(str(e).split())[-120:]
        if pixels is None:
            why = why or "not a readable image"
            return FrameError(f"cannot decode image {src.describe()} ({n} bytes): {why}", src, why), 1
        pixels = pixels if bgr else cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    return pixels, scale


def _turbo_decode(data, n: int, scale: int, bgr: bool, harmless: re.Pattern) -> np.ndarray | str | None:
    """The first `n` bytes of a JPEG decoded at 1/`scale` by TurboJPEG: the pixels; libjpeg's
    first warning (a str) when it reports damage; None when TurboJPEG cannot take the file
    (OpenCV decodes it instead: the same libjpeg-turbo, so the same pixels where both can).

    TurboJPEG decodes the whole image before it reports a warning, into `out`; a warning
    that `harmless` matches (bytes skipped after the last row read) leaves every pixel whole."""
    view = memoryview(data)[:n]
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(view)
    except ValueError:
        return None
    if exif_turned(data, n):   # OpenCV turns it as its EXIF says; TurboJPEG would not
        return None
    out = np.empty((-(-height // scale), -(-width // scale), 3), np.uint8)
    try:
        pixels = simplejpeg.decode_jpeg(view, colorspace="BGR" if bgr else "RGB", min_height=out.shape[0],
                                        min_width=out.shape[1], buffer=out, strict=True)
        return pixels if pixels.shape == out.shape else None
    except ValueError as e:
        said = str(e)
    if harmless.fullmatch(said):
        return out
    try:   # a warning (the pixels decode, damaged) or an error TurboJPEG cannot get past
        simplejpeg.decode_jpeg(view, colorspace="RGB", min_height=out.shape[0], min_width=out.shape[1],
                               buffer=out, strict=False)
    except ValueError:
        return None
    return said


# Huffman-coded sequential frames (baseline, extended): their scans end where the last MCU
# row ends, so a smaller declared height stops the entropy decoding there.
_SEQUENTIAL = (0xC0, 0xC1)
_OTHER_FRAMES = frozenset(range(0xC2, 0xD0)) - {0xC4, 0xC8, 0xCC}   # DHT, JPG, DAC are not frames
# what libjpeg says once it skips the rest of a shortened frame: the bytes up to the end
# marker, or up to a restart marker when the file has restart intervals
_SKIPPED_REST = re.compile(r"Corrupt JPEG data: \d+ extraneous bytes before marker 0xd[0-79]")
# the same after a whole decode: bytes between the last row and the end marker (no pixel lost)
_TRAILING_BYTES = re.compile(r"Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9")


def _segments(data, n: int):
    """(marker, offset, length) of each header segment in the first `n` bytes of a JPEG, up
    to and including its first scan (SOS); fill bytes before a marker are skipped."""
    i = 2
    while i + 4 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        yield marker, i, length
        if marker == 0xDA:
            return
        i += 2 + length


def _sequential_header(data, n: int) -> tuple[int, int, int] | None:
    """(offset of the frame height, the height, the MCU height) when the first `n` bytes of
    `data` are a sequential Huffman JPEG whose one scan holds every component; else None."""
    sof = None
    try:
        for marker, i, length in _segments(data, n):
            if marker in _SEQUENTIAL:
                nf = data[i + 9]
                v = max(data[i + 11 + 3 * k] & 0x0F for k in range(nf)) if nf > 1 else 1
                sof = (i + 5, (data[i + 5] << 8) | data[i + 6], 8 * v, nf)
            elif marker in _OTHER_FRAMES:   # progressive, lossless or arithmetic: left whole
                return None
            elif marker == 0xE1 and _exif_turned(data, i, length):   # its rows are not the image's
                return None
            elif marker == 0xDA:    # in sequential JPEG each component is in exactly one scan
                return sof[:3] if sof is not None and data[i + 4] == sof[3] else None
    except (IndexError, ValueError):
        return None
    return None


def exif_turned(data, n: int | None = None) -> bool:
    """Whether the header of a JPEG (its first `n` bytes) holds an EXIF orientation other
    than 1 (see `_exif_turned`)."""
    n = len(data) if n is None else n
    return any(marker == 0xE1 and _exif_turned(data, i, length) for marker, i, length in _segments(data, n))


def _exif_turned(data, i: int, length: int) -> bool:
    """Whether the APP1 segment at `i` is EXIF with an orientation other than 1: OpenCV then
    turns or mirrors the decoded image, so the file's rows are not the image's and a cut
    would keep the wrong ones. An EXIF block that does not parse counts as turned."""
    seg = bytes(data[i + 4:i + 2 + length])
    if not seg.startswith(b"Exif\0\0"):
        return False
    tiff = seg[6:]
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return True

    def u16(at: int) -> int:
        if at + 2 > len(tiff):
            raise ValueError("EXIF entry past the segment")
        return int.from_bytes(tiff[at:at + 2], order)

    try:
        ifd = int.from_bytes(tiff[4:8], order)
        for k in range(u16(ifd)):
            entry = ifd + 2 + 12 * k
            if u16(entry) == 0x0112:   # Orientation, a SHORT held in the entry itself
                return u16(entry + 8) != 1
    except ValueError:
        return True
    return False


def _cut_height(data, n: int, last: int):
    """`data` (a bytearray, changed in place, or a copy) declaring the smallest height that
    still decodes rows 0..`last` exactly, or None when no row would be saved.

    libjpeg then stops entropy decoding after that MCU row and skips to the end marker. One
    MCU row more than needed keeps the chroma upsampling of the last needed rows, which
    reads the next chroma row, the same as in a whole decode."""
    header = _sequential_header(data, n)
    if header is None:
        return None
    at, height, mcu = header
    cut = (-(-(last + 1) // mcu) + 1) * mcu
    if height == 0 or cut >= height:   # height 0: a DNL marker gives it later
        return None
    if not isinstance(data, bytearray):
        data = bytearray(data[:n])
    data[at:at + 2] = cut.to_bytes(2, "big")
    return data


def _open_zip(path: str) -> tuple[zipfile.ZipFile | None, Exception | None]:
    try:
        return zipfile.ZipFile(path), None
    except (OSError, zipfile.BadZipFile) as e:
        return None, e


def _open_video(path: str) -> av.container.InputContainer:
    if not os.path.isfile(path):
        raise RawDataError(f"video {path} does not exist", path=path)
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise RawDataError(f"cannot open video {path}: {_said(e)}", path=path) from None
    if not container.streams.video:
        container.close()
        raise RawDataError(f"cannot open video {path}: it holds no video stream", path=path)
    return container


def _said(e: Exception) -> str:
    """FFmpeg's words for an error PyAV raised, without PyAV's errno and call name."""
    return getattr(e, "strerror", None) or str(e)


def _claimed_frames(container: av.container.InputContainer, stream, fps: float) -> int:
    """The frame count the header claims; from its duration when it states no count (as
    OpenCV estimates it), 0 when it says neither."""
    if stream.frames:
        return stream.frames
    if container.duration and fps:
        return int(np.floor(container.duration / av.time_base * fps + 0.5))
    if stream.duration and stream.time_base and fps:
        return int(np.floor(float(stream.duration * stream.time_base) * fps + 0.5))
    return 0


class _VideoCursor:
    """An open video read forward; `position` is the 0-based index of the next frame.

    Each packet is decoded by one PyAV call; a packet the decoder rejects (FFmpeg's
    `err_detect=explode` turns a concealed error into a failed call), one the demuxer marks
    corrupt (cut short), or a frame FFmpeg flags corrupt takes one frame's place as the reason
    it failed, so the frames after it keep their numbers. Packets the container marks to be
    discarded (before an edit list's start) give no frame and are not counted as missing."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.position = 0
        self.ended: str | None = None    # why no further frame can be read
        self.claimed, self.fps, self.discarded = 0, 0.0, 0
        self.container: av.container.InputContainer | None = None
        try:
            self.container = _open_video(path)
        except RawDataError as e:
            self.ended, self.frames = str(e), iter(())
            return
        stream = self.container.streams.video[0]
        stream.codec_context.options = {"err_detect": "explode"}
        rate = stream.average_rate or stream.base_rate
        self.fps = float(rate) if rate else 0.0
        self.claimed = _claimed_frames(self.container, stream, self.fps)
        self.demux_error: str | None = None
        self.frames = self._decode(stream)

    @property
    def missing(self) -> int:
        """Frames the header claims beyond those read (once the video has ended)."""
        return max(0, self.claimed - self.discarded - self.position)

    def _decode(self, stream) -> Iterator["av.VideoFrame | str"]:
        """Every frame in display order, or in its place why it failed."""
        try:
            for packet in self.container.demux(stream):
                if packet.is_discard:
                    self.discarded += 1
                if packet.is_corrupt:
                    yield "FFmpeg: the container marks the frame's packet corrupt (cut short?)"
                    continue
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as e:
                    yield f"FFmpeg: {_said(e)}"
                    continue
                for frame in frames:
                    yield "FFmpeg: the decoder marks the frame corrupt" if frame.is_corrupt else frame
        except av.error.FFmpegError as e:   # the demuxer cannot go on: the file ends here
            self.demux_error = _said(e)

    def _next(self) -> "av.VideoFrame | str | None":
        """The next frame (or why it failed); None at the end, with `ended` saying why."""
        item = next(self.frames, None)
        if item is not None:
            self.position += 1
            return item
        claim = f" of the {self.claimed} its header claims" if self.missing else ""
        note = f"; FFmpeg: {self.demux_error}" if self.demux_error else ""
        self.ended = f"the video ends (or is damaged) after {self.position} frames{claim}{note}"
        return None

    def read(self, index: int, reduce: int, bgr: bool = False) -> np.ndarray | RawDataError:
        src = PixelSource("video", self.path, index=index)
        while self.ended is None and self.position < index:
            self._next()
        item = self._next() if self.ended is None else None
        if item is None:
            return FrameError(f"cannot decode frame {index} of {self.path}: {self.ended}", src, self.ended)
        if isinstance(item, str):
            return FrameError(f"cannot decode frame {index} of {self.path}: {item}", src, item)
        pixels = item.to_ndarray(format="bgr24" if bgr else "rgb24")
        if item.rotation % 360:   # as OpenCV shows it: the display matrix's turn, counter-clockwise
            pixels = np.ascontiguousarray(np.rot90(pixels, (item.rotation // 90) % 4))
        if reduce > 1:
            h, w = pixels.shape[:2]
            pixels = cv2.resize(pixels, (-(-w // reduce), -(-h // reduce)), interpolation=cv2.INTER_AREA)
        return pixels

    def close(self) -> None:
        if self.container is not None:
            self.frames.close()
            self.container.close()
