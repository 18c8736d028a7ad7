"""Inputs as one ordered stream of frames, decoded with prepare's own code (`faces.decode`).

Frames are produced one at a time, so memory stays flat however long a video is. A frame that
does not decode still comes through (its `pixels` is the error) and becomes a face=0 row, as
`prepare` keeps it; the failures of each file are reported as grouped `unreadable` anomalies
(one line per video and cause). A video that cannot be opened, or a folder without images,
gives no row and one anomaly; a video that ends before its header's frame count says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..datasets.base import AnomalyReport, PixelSource
from ..faces.decode import _VideoCursor, group_frame_errors, iter_frames, video_frame_count
from ..errors import AustackError
from .inputs import Input


@dataclass
class Frame:
    """One decoded frame (or the error in its place) and where it sits."""

    source: str                           # the image or video file
    index: int                            # 0-based frame number in its video or folder
    time_s: float | None                  # seconds from the video's start; None for images
    pixels: np.ndarray | Exception        # RGB uint8 (H, W, 3)
    sequence: int                         # frames of one sequence share a landmark tracker
    still: bool                           # an image (where --all-faces applies)


def count_frames(inputs: list[Input]) -> int | None:
    """Frames the inputs hold by their headers (for the progress bar); None when unknown."""
    total = 0
    for inp in inputs:
        if inp.kind == "video":
            try:
                n = video_frame_count(inp.path).container
            except AustackError:
                n = 0
            if n is None:
                return None
            total += n
        else:
            total += len(inp.members) if inp.kind == "folder" else 1
    return total


def stream_frames(inputs: list[Input], report: AnomalyReport) -> Iterator[Frame]:
    """Every frame of every input, in order; problems go to `report`."""
    for seq, inp in enumerate(inputs):
        if inp.kind == "video":
            yield from _video_frames(inp.path, seq, report)
        elif inp.kind == "folder" and not inp.members:
            report.add("unreadable", inp.path, "no image files in the folder; nothing predicted")
        else:
            paths = inp.members if inp.kind == "folder" else (inp.path,)
            yield from _image_frames(paths, seq, report)


def _image_frames(paths: tuple[str, ...], seq: int, report: AnomalyReport) -> Iterator[Frame]:
    failed = []
    sources = [PixelSource("image", p) for p in paths]
    for i, (path, pixels) in enumerate(zip(paths, iter_frames(sources))):
        if isinstance(pixels, Exception):
            failed.append((i, pixels))
        yield Frame(path, i, None, pixels, seq, True)
    report.items.extend(group_frame_errors(failed))


def _video_frames(path: str, seq: int, report: AnomalyReport) -> Iterator[Frame]:
    # The cursor is prepare's forward reader: damaged frames named from the decoder's results.
    cursor, failed, i = _VideoCursor(path), [], 0
    fps = cursor.fps
    try:
        while cursor.ended is None:
            pixels = cursor.read(i, 1)
            if isinstance(pixels, Exception) and cursor.ended is not None:
                break   # the end of the stream, not a damaged frame
            if isinstance(pixels, Exception):
                failed.append((i, pixels))
            yield Frame(path, i, i / fps if fps > 0 else None, pixels, seq, False)
            i += 1
    finally:
        cursor.close()
    report.items.extend(group_frame_errors(failed))
    if cursor.position == 0:
        report.add("unreadable", path, f"no frame could be read: {cursor.ended}")
    elif cursor.missing:
        report.add("unreadable", path, f"truncated: {cursor.ended}; rows stop at frame "
                   f"{cursor.position - 1}", cursor.missing)
