"""Strict cell parsing and the frame-number rule shared by every reader.

One parser for every integer cell, so that no reader rounds `0.5`, reads `²` as 2, or
overflows on `1e400`: a cell is an integer only if, once spaces and tabs around it are
removed, it is ASCII decimal digits (with one leading `-` where the format has negative
codes) and fits in int64. Anything else is reported by the caller, never guessed.

The frame-number rule (documented in `base.py` and docs/datasets.md): rows whose frame cell
is not an integer are dropped (`invalid_row`); of rows that repeat a frame number the first
is kept and the others dropped (`invalid_row`); rows out of frame order are sorted by frame
and the disorder reported once per file (`out_of_order`).
"""
from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import RawDataError
from .base import AnomalyReport

_UNSIGNED = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"-?[0-9]+")
_INT64 = np.iinfo(np.int64)
_PAD = " \t"          # stripped around a cell; any other character makes it not an integer


def parse_int(cell: str, signed: bool = True) -> int | None:
    """The integer a cell holds, or None if it is not strictly one (see the module doc)."""
    text = cell.strip(_PAD)
    if not (_SIGNED if signed else _UNSIGNED).fullmatch(text):
        return None
    value = int(text)
    return value if _INT64.min <= value <= _INT64.max else None


def parse_ints(cells: Sequence[str] | np.ndarray, signed: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """int64 values of many cells (shape kept) and the mask of cells that are integers.

    Each distinct cell text is parsed once: label columns hold a handful of codes."""
    arr = np.asarray(cells, dtype=str)
    if arr.size == 0:
        return np.zeros(arr.shape, np.int64), np.ones(arr.shape, bool)
    uniq, inverse = np.unique(arr, return_inverse=True)
    parsed = [parse_int(str(u), signed) for u in uniq]
    ok = np.array([p is not None for p in parsed])
    values = np.array([0 if p is None else p for p in parsed], dtype=np.int64)
    inverse = inverse.reshape(arr.shape)
    return values[inverse], ok[inverse]


def read_rows(path: str | os.PathLike, what: str, delimiter: str = ",") -> list[tuple[int, list[str]]]:
    """(line number, cells) of every row of a UTF-8 text table, blank rows included.

    BOMs at the start are dropped (an editor re-saving a file may add one before the one it
    had, which would otherwise cost the first row); CRLF, LF and CR line ends all work. A file that cannot be
    read or decoded raises `RawDataError` naming it (`what` says which kind of file it is)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig").lstrip("\ufeff")
    except (OSError, UnicodeDecodeError) as e:
        raise RawDataError(f"cannot read {what} {path} as UTF-8 text: {e}", path=path) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return [(reader.line_num, row) for row in reader]
    except csv.Error as e:
        raise RawDataError(f"{what} {path}: not a {delimiter!r}-separated table ({e})", path=path) from None


def is_blank(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells)


def span(lines: Sequence[int], shown: int = 5) -> str:
    """'3, 4, 9' or '3, 4, 9, 12, 15 and 7 more', for messages."""
    text = ", ".join(map(str, lines[:shown]))
    return text + (f" and {len(lines) - shown} more" if len(lines) > shown else "")


def report_rows(anomalies: AnomalyReport, path: str | os.PathLike, lines: Sequence[int], why: str) -> None:
    """One `invalid_row` anomaly for all the dropped rows of one kind in one file."""
    if lines:
        anomalies.add("invalid_row", path, f"{len(lines)} row(s) {why}, dropped: line(s) {span(lines)}",
                      count=len(lines))


def order_frames(cells: Sequence[str], lines: Sequence[int], path: str | os.PathLike,
                 anomalies: AnomalyReport) -> tuple[np.ndarray, np.ndarray]:
    """Apply the frame-number rule to one file's frame cells.

    Returns (frame numbers, indices into `cells`) of the kept rows, in frame order."""
    values, ok = parse_ints(list(cells), signed=False)
    kept: dict[int, int] = {}
    bad, repeated = [], []
    for i, (frame, good) in enumerate(zip(values.tolist(), ok.tolist())):
        if not good:
            bad.append(lines[i])
        elif frame in kept:
            repeated.append(lines[i])
        else:
            kept[frame] = i
    report_rows(anomalies, path, bad, "whose frame number is not a non-negative integer")
    report_rows(anomalies, path, repeated, "repeating a frame number already seen (the first row is kept)")
    in_file = list(kept)
    frames = sorted(in_file)
    if frames != in_file:
        first = next(lines[kept[b]] for a, b in zip(in_file, in_file[1:]) if b < a)
        anomalies.add("out_of_order", path, f"rows are not in frame order (first at line {first}); "
                      f"read sorted by frame number")
    return np.array(frames, dtype=np.int64), np.array([kept[f] for f in frames], dtype=np.int64)
