"""Decoding the pixels that readers point at (`PixelSource`), for `prepare`.

Readers only say where a frame is; this module turns a list of sources into RGB uint8 arrays,
in order, doing as little work as it can: each video is opened once and read forward (frames
not asked for are `grab()`-ed, which skips colour conversion; only the frames asked for are
`retrieve()`-d), each zip archive is opened once, and JPEGs are decoded at reduced size by
libjpeg itself when `reduce` > 1.

A frame that cannot be decoded does not stop the stream: its place holds a `RawDataError`
naming the file and the frame, so the caller can count it and report it.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import cv2
import numpy as np

from ..errors import ConfigError, RawDataError
from .base import PixelSource

# cv2 flag per reduction factor: libjpeg decodes at 1/2, 1/4 or 1/8 scale directly.
_IMREAD_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}

_JPEG_START, _JPEG_SCAN, _JPEG_END = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"


class FrameCount(NamedTuple):
    container: int | None   # what the container header claims (None: it does not say)
    decodable: int | None   # frames that actually decode (None: not counted)


def video_frame_count(path: str | os.PathLike, decodable: bool = False) -> FrameCount:
    """Frame count of a video: the container's claim, and with `decodable=True` the number of
    frames that really decode (reads the whole file). Raises `RawDataError` if it cannot be opened."""
    cap = _open_video(str(path))
    try:
        claimed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        n = None
        if decodable:
            n = 0
            while cap.grab():
                n += 1
        return FrameCount(claimed if claimed > 0 else None, n)
    finally:
        cap.release()


def iter_frames(sources: list[PixelSource], reduce: int = 1) -> Iterator[np.ndarray | Exception]:
    """One RGB uint8 (H, W, 3) array per source, in order, or a `RawDataError` in its place.

    `reduce` (1, 2, 4 or 8) shrinks every frame by that factor (sizes rounded up, as libjpeg does).
    Frames of one video should come in increasing index order; going back reopens the video.
    """
    if reduce not in _IMREAD_FLAGS:
        raise ConfigError(f"reduce must be one of {sorted(_IMREAD_FLAGS)}, got {reduce!r}")
    video: _VideoCursor | None = None
    archive: zipfile.ZipFile | None = None
    archive_error: Exception | None = None
    try:
        for src in sources:
            if src.kind == "video":
                if video is None or video.path != src.path or src.index < video.position:
                    if video is not None:
                        video.close()
                    video = _VideoCursor(src.path)
                yield video.read(src.index, reduce)
            elif src.kind == "zip":
                if archive is None or archive.filename != src.path:
                    if archive is not None:
                        archive.close()
                    archive, archive_error = _open_zip(src.path)
                if archive_error is not None:
                    yield RawDataError(f"cannot read {src.describe()}: {archive_error}", path=src.path)
                    continue
                try:
                    data = archive.read(src.member)
                except (KeyError, OSError, zipfile.BadZipFile) as e:
                    yield RawDataError(f"cannot read {src.describe()}: {e}", path=src.path)
                    continue
                yield _decode(data, reduce, src)
            elif src.kind == "image":
                try:
                    data = np.fromfile(src.path, dtype=np.uint8).tobytes()
                except OSError as e:
                    yield RawDataError(f"cannot read {src.path}: {e}", path=src.path)
                    continue
                yield _decode(data, reduce, src)
            else:
                yield RawDataError(f"unknown pixel source kind {src.kind!r} for {src.describe()}",
                                   path=src.path)
    finally:
        if video is not None:
            video.close()
        if archive is not None:
            archive.close()


def _decode(data: bytes, reduce: int, src: PixelSource) -> np.ndarray | RawDataError:
    # libjpeg fills a cut-off JPEG with grey and only warns; a complete one has an end marker
    # after its last scan (entropy-coded data cannot contain one), so check that first.
    if data.startswith(_JPEG_START):
        scan = data.rfind(_JPEG_SCAN)
        if scan < 0 or data.find(_JPEG_END, scan) < 0:
            return RawDataError(f"truncated JPEG {src.describe()} (no end marker after the last scan); "
                                f"re-extract or re-download it", path=src.path)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), _IMREAD_FLAGS[reduce])
    if bgr is None:
        return RawDataError(f"cannot decode image {src.describe()} ({len(data)} bytes): not a readable "
                            f"image", path=src.path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
        try:
            self.cap: cv2.VideoCapture | None = _open_video(self.path)
        except RawDataError as e:
            self.cap, self.ended = None, str(e)

    def read(self, index: int, reduce: int) -> np.ndarray | RawDataError:
        while self.ended is None and self.position < index:
            self._grab()
        if self.ended is None:
            self._grab()
        if self.ended is not None:
            return RawDataError(f"cannot decode frame {index} of {self.path}: {self.ended}", path=self.path)
        ok, bgr = self.cap.retrieve()
        if not ok or bgr is None:
            return RawDataError(f"cannot decode frame {index} of {self.path}: retrieve failed", path=self.path)
        if reduce > 1:
            h, w = bgr.shape[:2]
            bgr = cv2.resize(bgr, (-(-w // reduce), -(-h // reduce)), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _grab(self) -> None:
        if self.cap.grab():
            self.position += 1
        else:
            self.ended = f"the video ends (or is damaged) after {self.position} decodable frames"

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
