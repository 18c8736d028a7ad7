"""What `austack predict` is pointed at: image files, folders of images and videos, expanded
into `Input`s before any frame is decoded, so a path that does not exist stops the run at once.

A folder's images are taken in numeric order (`frame_2.jpg` before `frame_10.jpg`), as frame
folders are numbered without zero padding. Anything that is not an image file by its
extension is handed to OpenCV as a video; one it cannot open is a reported skip.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import ConfigError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm",
                            ".pgm", ".pbm", ".jp2"})


@dataclass(frozen=True)
class Input:
    """One thing to predict on: `kind` is "image", "folder" or "video"."""

    kind: str
    path: str
    members: tuple[str, ...] = ()   # a folder's image files, in numeric order


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def numeric_key(name: str) -> list:
    """Sort key that orders the digit runs of a name as numbers: 2 < 10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", name) if part]


def folder_images(folder: Path) -> tuple[str, ...]:
    names = [e.name for e in os.scandir(folder) if e.is_file() and is_image(e.name)]
    return tuple(str(folder / n) for n in sorted(names, key=numeric_key))


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Input]:
    """Each path as an `Input`; a path that does not exist is a `ConfigError` naming it."""
    inputs = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            inputs.append(Input("folder", str(path), folder_images(path)))
        elif path.is_file():
            inputs.append(Input("image" if is_image(path) else "video", str(path)))
        else:
            raise ConfigError(f"{path} does not exist; give image files, folders of images or "
                              f"videos", path=path)
    if not inputs:
        raise ConfigError("no input given; name at least one image, folder or video")
    return inputs
