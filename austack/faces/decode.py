"""Decoding the pixels that readers point at (`PixelSource`), for `prepare`.

Readers only say where a frame is; this module turns a list of sources into RGB uint8 arrays,
in order, doing as little work as it can: each video is opened once and read forward (frames
not asked for are `grab()`-ed, which skips colour conversion; only the frames asked for are
`retrieve()`-d), each zip archive is opened once, and JPEGs are decoded at reduced size by
libjpeg itself when `reduce` > 1.

A frame that cannot be decoded does not stop the stream: its place holds a `FrameError` (a
`RawDataError`) naming the file and the frame, so the caller can count it and report it;
`group_frame_errors` turns a session's failures into one anomaly per file and cause, so a
damaged video is one line with a count, not one line per frame.

What FFmpeg prints while a video is opened or a frame decoded is captured (fd 2 is pointed at
a temporary file around those calls) instead of reaching the terminal: a frame during whose
decode FFmpeg reported something is a `FrameError` carrying the message (such frames decode
to garbage, e.g. "overread 2"), and a video that ends before its header's frame count says so.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple

import cv2
import numpy as np

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


class _NativeStderr:
    """Captures what native code writes to fd 2 inside `with` blocks; `take()` returns it.

    Falls back to not capturing when fd 2 cannot be duplicated (a closed stderr)."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()
        self.saved: int | None = None

    def __enter__(self) -> "_NativeStderr":
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            os.dup2(self.file.fileno(), 2)
        except (OSError, ValueError):
            self.saved = None
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.saved = None

    def take(self) -> str:
        # fd 2 shares the file's offset: it is how much was written since the last rewind
        # (three system calls; no truncation needed, the stale tail is never read)
        fd = self.file.fileno()
        size = os.lseek(fd, 0, os.SEEK_CUR)
        if not size:
            return ""
        text = os.pread(fd, size, 0).decode("utf-8", "replace")
        os.lseek(fd, 0, os.SEEK_SET)
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())

    def close(self) -> None:
        self.file.close()


def video_frame_count(path: str | os.PathLike, decodable: bool = False) -> FrameCount:
    """Frame count of a video: the container's claim, and with `decodable=True` the number of
    frames that really decode (reads the whole file). Raises `RawDataError` if it cannot be opened.
    FFmpeg's messages are kept off the terminal."""
    trap = _NativeStderr()
    try:
        with trap:
            cap = _open_video(str(path))
        try:
            claimed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            n = None
            if decodable:
                n = 0
                with trap:
                    while cap.grab():
                        n += 1
            return FrameCount(claimed if claimed > 0 else None, n)
        finally:
            cap.release()
    finally:
        trap.close()


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
    buffer, cut = _FileBuffer(), _Cut()
    try:
        for src, scale, last in zip(sources, scales, rows or [None] * len(sources)):
            cut.last = last
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
                yield _decode(data, len(data), scale, src, bgr, every_format, cut)
            elif src.kind == "image":
                try:
                    data, n = buffer.read(src.path)
                except OSError as e:
                    yield _error(src, str(e)), 1
                    continue
                yield _decode(data, n, scale, src, bgr, every_format, cut)
            else:
                yield _error(src, f"unknown pixel source kind {src.kind!r}"), 1
    finally:
        cut.close()
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
            cut: "_Cut") -> tuple[np.ndarray | RawDataError, int]:
    """The first `n` bytes of `data` decoded at 1/`scale` (JPEG only unless `every_format`),
    down to row `cut.last` of the frame or further."""
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
    try:
        if jpeg and cut.last is not None and (shorter := _cut_height(data, n, cut.last)) is not None:
            pixels = cut.decode(shorter, n, _IMREAD_FLAGS[scale])
        else:
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8, count=n), _IMREAD_FLAGS[scale])
    except cv2.error as e:
        pixels, why = None, " ".join(str(e).split())[-120:]
    else:
        why = "not a readable image"
    if pixels is None:
        return FrameError(f"cannot decode image {src.describe()} ({n} bytes): {why}", src, why), 1
    return (pixels if bgr else cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)), scale


# Huffman-coded sequential frames (baseline, extended): their scans end where the last MCU
# row ends, so a smaller declared height stops the entropy decoding there.
_SEQUENTIAL = (0xC0, 0xC1)
_OTHER_FRAMES = frozenset(range(0xC2, 0xD0)) - {0xC4, 0xC8, 0xCC}   # DHT, JPG, DAC are not frames
# what libjpeg says once it skips the rest of a shortened frame: the bytes up to the end
# marker, or up to a restart marker when the file has restart intervals
_SKIPPED_REST = re.compile(r"Corrupt JPEG data: \d+ extraneous bytes before marker 0xd[0-79]")


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


def exif_turned(data) -> bool:
    """Whether a JPEG's header holds an EXIF orientation other than 1 (see `_exif_turned`)."""
    return any(marker == 0xE1 and _exif_turned(data, i, length) for marker, i, length in _segments(data, len(data)))


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


class _Cut:
    """The row a decode may stop at (`last`), and a capture of libjpeg's warning that the
    rest of the file was skipped (expected for a shortened frame; anything else it says is
    passed on to stderr, as an uncut decode would)."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.trap: _NativeStderr | None = None

    def decode(self, data, n: int, flag: int) -> np.ndarray | None:
        self.trap = self.trap or _NativeStderr()
        with self.trap:
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8, count=n), flag)
        said = [s for s in self.trap.take().split(" | ") if s]
        if said and _SKIPPED_REST.fullmatch(said[-1]):   # the last word, after the last row read
            said.pop()
        if said:
            print(" | ".join(said), file=sys.stderr)
        return pixels

    def close(self) -> None:
        if self.trap is not None:
            self.trap.close()


def _open_zip(path: str) -> tuple[zipfile.ZipFile | None, Exception | None]:
    try:
        return zipfile.ZipFile(path), None
    except (OSError, zipfile.BadZipFile) as e:
        return None, e


def _open_video(path: str) -> cv2.VideoCapture:
    # FFmpeg first: it decodes up to the damage in a truncated file, where OpenCV's own
    # MJPEG reader refuses to open it at all.
    if not os.path.isfile(path):
        raise RawDataError(f"video {path} does not exist", path=path)
    for api in (cv2.CAP_FFMPEG, cv2.CAP_ANY):
        cap = cv2.VideoCapture(path, api)
        if cap.isOpened():
            return cap
        cap.release()
    raise RawDataError(f"cannot open video {path}: no OpenCV backend can read it", path=path)


@dataclass
class _VideoCursor:
    """An open video read forward; `position` is the 0-based index of the next frame."""

    path: str

    def __post_init__(self) -> None:
        self.position = 0
        self.ended: str | None = None    # why no further frame can be read
        self.trap = _NativeStderr()
        self.cap: cv2.VideoCapture | None = None
        try:
            with self.trap:
                self.cap = _open_video(self.path)
        except RawDataError as e:
            self.ended = str(e)
        self.opened_with = self.trap.take()     # e.g. "Something went wrong during header parsing"
        self.claimed = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self.cap is not None else 0

    def read(self, index: int, reduce: int, bgr: bool = False) -> np.ndarray | RawDataError:
        src = PixelSource("video", self.path, index=index)
        while self.ended is None and self.position < index:
            self._grab()
        said = self._grab() if self.ended is None else ""
        if self.ended is not None:
            return FrameError(f"cannot decode frame {index} of {self.path}: {self.ended}", src, self.ended)
        with self.trap:
            ok, pixels = self.cap.retrieve()
        said = " | ".join(filter(None, [said, self.trap.take()]))
        if not ok or pixels is None or said:
            reason = f"FFmpeg: {said}" if said else "retrieve failed"
            return FrameError(f"cannot decode frame {index} of {self.path}: {reason}", src, reason)
        if reduce > 1:
            h, w = pixels.shape[:2]
            pixels = cv2.resize(pixels, (-(-w // reduce), -(-h // reduce)), interpolation=cv2.INTER_AREA)
        return pixels if bgr else cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)

    def _grab(self) -> str:
        """Advance one frame; returns what FFmpeg said while decoding it."""
        with self.trap:
            ok = self.cap.grab()
        said = self.trap.take()
        if ok:
            self.position += 1
            return said
        claim = f" of the {self.claimed} its header claims" if self.claimed > self.position else ""
        notes = " | ".join(filter(None, [self.opened_with, said]))
        self.ended = (f"the video ends (or is damaged) after {self.position} decodable frames{claim}"
                      + (f"; FFmpeg: {notes}" if notes else ""))
        return said

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
        self.trap.close()
