"""The per-frame CSV styles of the AU tools `austack score` reads, and how to tell them apart.

One table: for each tool, the AU columns it scores, where the frame number sits and its base,
the column naming the input file, and how a row says that no face was found.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from ..errors import ConfigError, did_you_mean


def _cell(row: Mapping[str, str], name: str) -> str:
    return (row.get(name) or "").strip()


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return None if v != v else v   # NaN: py-feat's cell for a frame without a face


@dataclass(frozen=True)
class ToolStyle:
    name: str
    title: str
    au_pattern: str                   # regex; group 1 is the AU number
    frame_columns: tuple[str, ...]    # first one present holds the frame number
    frame_base: int                   # the number of a sequence's first frame
    input_columns: tuple[str, ...]    # first one present names the image or video
    threshold: float                  # active when the AU cell >= threshold
    face_found: Callable[[Mapping[str, str]], bool]
    extra_face: Callable[[Mapping[str, str]], bool]   # a second face of a frame already seen

    def au_columns(self, header: Sequence[str]) -> dict[int, str]:
        pat = re.compile(self.au_pattern)
        out = {}
        for h in header:
            m = pat.fullmatch(h)
            if m:
                out[int(m.group(1))] = h
        return out

    def first(self, header: Sequence[str], names: Sequence[str]) -> str | None:
        return next((n for n in names if n in header), None)


def _austack_face(row) -> bool:
    return _cell(row, "face") not in ("", "0")


def _austack_extra(row) -> bool:
    return _cell(row, "face") not in ("", "0", "1")


def _openface_face(row) -> bool:
    return _number(_cell(row, "success")) == 1


def _openface_extra(row) -> bool:
    fid = _number(_cell(row, "face_id"))
    return fid is not None and fid > 0


def _never(row) -> bool:
    return False


TOOLS: dict[str, ToolStyle] = {
    "austack": ToolStyle("austack", "austack predict", r"AU(\d+)_c", ("frame",), 0, ("input",), 0.5,
                         _austack_face, _austack_extra),
    "py-feat": ToolStyle("py-feat", "py-feat (Fex CSV)", r"AU(\d+)", ("frame",), 0, ("input",), 0.5,
                         lambda row: True, _never),
    "openface2": ToolStyle("openface2", "OpenFace 2 FeatureExtraction", r"AU(\d+)_c", ("frame",), 1, (), 0.5,
                           _openface_face, _openface_extra),
    "libreface": ToolStyle("libreface", "LibreFace", r"au_(\d+)", ("frame", "frame_idx", "frame_index"), 0,
                           ("input", "path", "image_path", "file"), 0.5, lambda row: True, _never),
}


def detect(header: Sequence[str], where: str) -> ToolStyle:
    """The style a CSV header is written in: OpenFace by `success` and `AUnn_c`, austack by
    `face_x` and `AUnn_c`, py-feat by bare `AUnn`, LibreFace by `au_n`."""
    h = set(header)
    has = lambda style: bool(TOOLS[style].au_columns(header))   # noqa: E731
    if "success" in h and has("openface2"):
        return TOOLS["openface2"]
    if "face_x" in h and has("austack"):
        return TOOLS["austack"]
    if has("py-feat"):
        return TOOLS["py-feat"]
    if has("libreface"):
        return TOOLS["libreface"]
    raise ConfigError(f"{where}: no AU columns recognised (austack AU01_c, py-feat AU01, OpenFace 2 AU01_c with "
                      f"success, LibreFace au_1); pass --tool with one of {', '.join(TOOLS)}")


def tool(name: str) -> ToolStyle:
    if name not in TOOLS:
        raise ConfigError(f"unknown tool {name!r}{did_you_mean(name, TOOLS)}; expected one of {', '.join(TOOLS)}")
    return TOOLS[name]


def au_value(row: Mapping[str, str], column: str) -> float | None:
    """The AU cell as a number; None when empty or NaN (no face)."""
    return _number(_cell(row, column))


def frame_number(row: Mapping[str, str], column: str | None) -> int | None:
    if column is None:
        return None
    v = _number(_cell(row, column))
    return None if v is None else int(round(v))
