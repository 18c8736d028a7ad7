"""BP4D-Spontaneous: 41 subjects (F001-F023, M001-M018), tasks T1-T8, AU occurrence coded per frame.

Layout read (`root` is the folder that holds these):

    Sequences(2D+3D)/<SUBJ>/<TASK>/<n>.jpg     also named Sequences_2D+3D/ or 2D+3D/
    AUCoding/AU_OCC/<SUBJ>_<TASK>.csv          one header row, then one row per coded frame
    2DFeatures/<SUBJ>_<TASK>.mat               optional: MATLAB v7.3, `fit/pred`, 49 points/frame

Irregularities handled (each one a test case):
- jpg names are zero-padded to 4 digits (F001-F023, M001-M008) or 3 (M009-M018), and numbers
  past the padding are wider: the folder is listed and names are matched by their number.
- two CSV header styles: legacy `0,1,...,99` (column N is AU N, the last column an occlusion
  flag) and the re-release naming only the coded AUs (`1,1,2,4,...`: the first cell may repeat
  an AU number, so column 0 is always read by position as the frame number); a UTF-8 BOM.
- codes 0 / 1 / 9 (9 -> -1); any other value is stored as -1 and reported (`unknown_code`).
- CSV frames are 1-based, contiguous and usually start far above 1; a row whose jpg is missing
  is reported (`missing_image`) and not yielded, since it has no pixels.
- `2DFeatures` holds one entry per CSV row from the first coded frame on; a different count is
  reported (`count_mismatch`), a missing or unreadable file too, and such frames keep
  `landmarks=None`. Coordinates are converted from MATLAB's 1-based pixels to 0-based.

Options (keyword arguments of the constructor, and of `create_reader("bp4d", root, ...)`):
    frame_offset: int = 0   CSV frame f is image f + frame_offset (public code disagrees; 0 is
                            the common reading, -1 the other).
    protocol: str           protocol whose AUs and label rule are read (default bp4d-3fold@v1).

Citation: X. Zhang, L. Yin, J. F. Cohn et al., "BP4D-Spontaneous: a high-resolution spontaneous
3D dynamic facial expression database", Image and Vision Computing 32(10), 2014.
"""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import ConfigError, RawDataError
from ..protocols import LabelRule
from ._matlab import read_v73_cells
from .base import AnomalyReport, FrameRecord, PixelSource, Reader, SessionRecord, SessionRef, register_reader

LABEL_DIR = "AUCoding/AU_OCC"
FRAME_DIRS = ("Sequences(2D+3D)", "Sequences_2D+3D", "2D+3D")
LANDMARK_DIR = "2DFeatures"
LANDMARK_KEY = "fit/pred"
LANDMARK_POINTS = 49
LABEL_FILE = re.compile(r"([FM]\d{3})_(T\d+)\.csv", re.IGNORECASE)
FRAME_FILE = re.compile(r"(\d+)\.jpg", re.IGNORECASE)
AU_NAME = re.compile(r"(?:AU)?\s*0*(\d+)", re.IGNORECASE)   # "12", "AU12", "au 12", "AU012"
NOT_AN_INTEGER = np.iinfo(np.int32).min                     # a label cell that is not a number


# --- AU_OCC csv files (shared with BP4D+) ---------------------------------------------------------

@dataclass
class OccTable:
    """One AU_OCC CSV: rows in frame order, raw codes in the protocol's AU order."""

    path: Path
    style: str            # "legacy" (0,1,...,99) or "named" (only coded AUs)
    frames: np.ndarray    # int64 (R,), the CSV's frame numbers
    codes: np.ndarray     # int64 (R, n_au); NOT_AN_INTEGER where a cell is not a number


def read_occ_csv(path: Path, aus: tuple[int, ...], anomalies: AnomalyReport) -> OccTable:
    """Parse an AU_OCC CSV of either header style. Rows that cannot be used are reported
    (`invalid_row`) and dropped; a file without the protocol's AU columns raises `RawDataError`."""
    try:
        text = path.read_text(encoding="utf-8-sig")       # -sig: tolerate a BOM
    except (OSError, UnicodeDecodeError) as e:
        raise RawDataError(f"{path}: cannot read as UTF-8 text: {e}", path=path) from None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise RawDataError(f"{path}: empty; expected a header row, then one row per coded frame", path=path)
    style, columns = _au_columns(rows[0], aus, path)
    need = max(columns) + 1
    kept: dict[int, list[str]] = {}
    short, bad_frame, repeated = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) < need:
            short.append(line)
        elif not row[0].strip().isdigit():
            bad_frame.append(line)
        elif int(row[0]) in kept:
            repeated.append(line)
        else:
            kept[int(row[0])] = [row[c] for c in columns]
    for lines, why in ((short, f"fewer than {need} cells"), (bad_frame, "a frame cell that is not a number"),
                       (repeated, "a frame number already seen (the first row is kept)")):
        if lines:
            anomalies.add("invalid_row", path, f"{len(lines)} row(s) with {why}, dropped: lines {_span(lines)}",
                          count=len(lines))
    order = sorted(kept)
    cells = np.array([kept[f] for f in order], dtype=str).reshape(len(order), len(aus))
    return OccTable(path, style, np.array(order, dtype=np.int64), _to_codes(cells))


def encode_labels(table: OccTable, rule: LabelRule, aus: tuple[int, ...], anomalies: AnomalyReport) -> np.ndarray:
    """Codes -> int8 labels 1/0/-1 by the protocol's rule; odd codes become -1 and are reported."""
    labels, odd = rule.encode(table.codes)
    if odd.any():
        per_au = ", ".join(f"AU{aus[j]} x{odd[:, j].sum()}" for j in np.flatnonzero(odd.any(axis=0)))
        values = sorted({"non-integer" if v == NOT_AN_INTEGER else str(v) for v in table.codes[odd]})
        anomalies.add("unknown_code", table.path,
                      f"code(s) {', '.join(values)} ({per_au}) are not 0/1/9; stored as unknown (-1)",
                      count=int(odd.sum()))
    return labels


def _au_columns(header: list[str], aus: tuple[int, ...], path: Path) -> tuple[str, list[int]]:
    cells = [c.strip() for c in header]
    if all(c.isdigit() for c in cells) and [int(c) for c in cells] == list(range(len(cells))):
        style = "legacy"   # column N is AU N; the last column is the occlusion flag, not an AU
        named = {n: n for n in range(1, len(cells) - 1)}
    else:
        style = "named"    # column 0 is the frame whatever its header says
        named = {}
        for i, cell in enumerate(cells[1:], start=1):
            m = AU_NAME.fullmatch(cell)
            if m:
                named.setdefault(int(m[1]), i)
    missing = [a for a in aus if a not in named]
    if missing:
        shown = ",".join(cells[:14]) + (",..." if len(cells) > 14 else "")
        raise RawDataError(
            f"{path}: header {shown!r} has no column for AU {', '.join(map(str, missing))}; expected the legacy "
            f"header 0,1,...,99 or a frame column followed by AU numbers", path=path)
    return style, [named[a] for a in aus]


def _to_codes(cells: np.ndarray) -> np.ndarray:
    try:
        return cells.astype(np.int64)
    except ValueError:   # some cell is not an integer: keep the file, mark just those cells
        flat = [int(c) if c.strip().lstrip("-").isdigit() else NOT_AN_INTEGER for c in cells.ravel()]
        return np.array(flat, dtype=np.int64).reshape(cells.shape)


def _span(lines: list[int], shown: int = 5) -> str:
    return ", ".join(map(str, lines[:shown])) + (f" and {len(lines) - shown} more" if len(lines) > shown else "")


# --- frames on disk or in a zip (shared with BP4D+) -----------------------------------------------

@dataclass
class FrameFiles:
    """The jpgs of one session, by number, and how to name one that is missing."""

    where: str                        # the folder, or "<zip>:<folder>", in messages
    sources: dict[int, PixelSource]
    width: int                        # zero padding probed from the names present

    def expected(self, number: int) -> str:
        return f"{self.where}/{number:0{self.width}d}.jpg"


def index_names(names: list[str], where: str, make_source, anomalies: AnomalyReport) -> FrameFiles:
    """Index jpg names (`<n>.jpg`, any padding) by number; two names for one number are reported."""
    sources: dict[int, PixelSource] = {}
    widths = []
    for name in sorted(names):
        m = FRAME_FILE.fullmatch(name)
        if not m:
            continue
        n = int(m[1])
        if n in sources:
            anomalies.add("unexpected_file", f"{where}/{name}",
                          f"a second image for frame number {n} ({sources[n].describe()} is used)")
            continue
        sources[n] = make_source(name)
        widths.append(len(m[1]))
    # Padding is the shortest name: numbers past it are simply wider.
    return FrameFiles(where, sources, min(widths, default=1))


def list_folder(folder: Path, anomalies: AnomalyReport) -> FrameFiles | None:
    """The jpgs of a frame folder, or None when the folder does not exist."""
    if not folder.is_dir():
        return None
    where = str(folder)
    return index_names(os.listdir(folder), where,
                       lambda name: PixelSource("image", os.path.join(where, name)), anomalies)


# --- the reader -----------------------------------------------------------------------------------

@register_reader("bp4d")
class BP4DReader(Reader):
    """BP4D raw distribution -> sessions of frames with 12 AU labels and the shipped 49 landmarks."""

    dataset = "bp4d"
    protocol = "bp4d-3fold@v1"
    expected = (f"frames in {FRAME_DIRS[0]}/<SUBJ>/<TASK>/<n>.jpg (or {' or '.join(FRAME_DIRS[1:])}), labels in "
                f"{LABEL_DIR}/<SUBJ>_<TASK>.csv, optional landmarks in {LANDMARK_DIR}/<SUBJ>_<TASK>.mat")
    frame_dirs: ClassVar[tuple[str, ...]] = FRAME_DIRS
    default_frame_offset: ClassVar[int] = 0

    def __init__(self, root: str | os.PathLike, *, frame_offset: int | None = None, protocol: str | None = None,
                 **unknown):
        if unknown:
            raise ConfigError(f"{self.dataset} reader: unknown option(s) {', '.join(sorted(unknown))}; "
                              f"options are frame_offset, protocol")
        offset = self.default_frame_offset if frame_offset is None else frame_offset
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
            raise ConfigError(f"{self.dataset} reader: frame_offset must be an integer, got {frame_offset!r}")
        self.frame_offset = int(offset)
        self.use_protocol(protocol)
        super().__init__(root, frame_offset=self.frame_offset, protocol=self.label_protocol.id)

    # --- layout ---------------------------------------------------------------------------------
    def verify(self) -> None:
        label_dir = self.root / LABEL_DIR
        if not label_dir.is_dir():
            raise self.not_found(f"{label_dir} does not exist")
        if not self._label_files():
            raise self.not_found(f"{label_dir} holds no <SUBJ>_<TASK>.csv label file")
        found = [self.root / d for d in self.frame_dirs if (self.root / d).is_dir()]
        if not found:
            raise self.not_found(f"{self.root / self.frame_dirs[0]} does not exist"
                                 + (f" (nor {', '.join(self.frame_dirs[1:])})" if len(self.frame_dirs) > 1 else ""))
        self.frames_dir = found[0]

    def _label_files(self) -> list[tuple[str, str, Path]]:
        out = []
        for name in os.listdir(self.root / LABEL_DIR):
            m = LABEL_FILE.fullmatch(name)
            if m:
                out.append((m[1].upper(), m[2].upper(), self.root / LABEL_DIR / name))
        return sorted(out, key=lambda s: (s[0], int(s[1][1:])))   # T2 before T10

    def sessions(self) -> list[SessionRef]:
        return [SessionRef(subj, task, str(path)) for subj, task, path in self._label_files()]

    def frame_files(self, ref: SessionRef, anomalies: AnomalyReport) -> FrameFiles | None:
        """The session's jpgs, or None when its frame folder does not exist."""
        return list_folder(self.frames_dir / ref.subject / ref.session, anomalies)

    def frame_folder(self, ref: SessionRef) -> str:
        """Where the session's frames were looked for, for messages."""
        return str(self.frames_dir / ref.subject / ref.session)

    # --- one session ----------------------------------------------------------------------------
    def read_session(self, ref: SessionRef, anomalies: AnomalyReport) -> SessionRecord:
        label_file = Path(ref.label_file)
        if not label_file.is_file():
            raise RawDataError(f"{label_file} does not exist; pass a SessionRef from sessions()", path=label_file)
        aus = self.label_protocol.aus
        try:
            table = read_occ_csv(label_file, aus, anomalies)
        except RawDataError as e:
            anomalies.add("unreadable", label_file, f"{e}; session {ref.subject}/{ref.session} skipped")
            return SessionRecord(ref.subject, ref.session, [])
        try:
            files = self.frame_files(ref, anomalies)
        except RawDataError as e:   # e.g. a corrupt zip: every labelled frame lacks pixels
            anomalies.add("unreadable", e.path or self.frame_folder(ref),
                          f"{e}; the {len(table.frames)} labelled frames of {label_file.name} skipped",
                          count=len(table.frames))
            return SessionRecord(ref.subject, ref.session, [])
        labels = encode_labels(table, self.label_protocol.label, aus, anomalies)
        landmarks = self.landmarks(ref, table, anomalies)

        frames: list[FrameRecord] = []
        missing: list[int] = []
        for row, frame in enumerate(table.frames.tolist()):
            source = files.sources.get(frame + self.frame_offset) if files else None
            if source is None:
                missing.append(frame)
                continue
            frames.append(FrameRecord(ref.subject, ref.session, frame, source, labels[row],
                                      landmarks=None if landmarks is None else landmarks[row]))
        self._report_missing_images(ref, table, files, missing, anomalies)
        has_landmarks = any(f.landmarks is not None for f in frames)
        return SessionRecord(ref.subject, ref.session, frames, LANDMARK_POINTS if has_landmarks else None)

    def _report_missing_images(self, ref: SessionRef, table: OccTable, files: FrameFiles | None,
                               missing: list[int], anomalies: AnomalyReport) -> None:
        if not missing:
            return
        if not files or not files.sources:
            state = "does not exist" if files is None else "holds no <n>.jpg"
            anomalies.add("missing_image", self.frame_folder(ref),
                          f"frame folder {state}; {len(missing)} labelled frames of {table.path.name} "
                          f"({missing[0]}-{missing[-1]}) skipped", count=len(missing))
            return
        for frame in missing:
            anomalies.add("missing_image", files.expected(frame + self.frame_offset),
                          f"CSV frame {frame} of {table.path.name} has no image (frame_offset "
                          f"{self.frame_offset}); frame skipped")

    def landmarks(self, ref: SessionRef, table: OccTable, anomalies: AnomalyReport) -> list[np.ndarray | None] | None:
        """0-based 49x2 landmarks per CSV row (None where absent), or None for the whole session."""
        path = self.root / LANDMARK_DIR / f"{ref.subject}_{ref.session}.mat"
        rows = len(table.frames)
        if not rows:
            return None
        if not path.is_file():
            anomalies.add("missing_landmarks", path, f"no landmark file; the {rows} frames of {table.path.name} "
                          f"keep landmarks=None", count=rows)
            return None
        try:
            cells = read_v73_cells(path, LANDMARK_KEY)
            shapes = {c.shape for c in cells if c is not None} - {(LANDMARK_POINTS, 2)}
            if shapes:
                raise RawDataError(f"{path}: {LANDMARK_KEY} holds {sorted(shapes)} matrices, expected "
                                   f"{LANDMARK_POINTS}x2", path=path)
        except RawDataError as e:
            anomalies.add("unreadable", path, f"{e}; the {rows} frames of {table.path.name} keep landmarks=None",
                          count=rows)
            return None
        if len(cells) != rows:
            lost = max(0, rows - len(cells))
            anomalies.add("count_mismatch", path,
                          f"{len(cells)} landmark frames for {rows} rows of {table.path.name}; matched from its first "
                          f"frame {table.frames[0]}" + (f", the last {lost} frames keep landmarks=None" if lost else ""))
        out: list[np.ndarray | None] = []
        empty = 0
        for frame in table.frames.tolist():
            k = frame - int(table.frames[0])
            cell = cells[k] if k < len(cells) else None
            if cell is not None and np.isfinite(cell).all():
                out.append((cell - 1.0).astype(np.float32))   # MATLAB 1-based -> 0-based pixels
            else:
                out.append(None)
                if k < len(cells):    # frames past the end are already in count_mismatch
                    empty += 1
        if empty:
            anomalies.add("missing_landmarks", path, f"{empty} frames with an empty or non-finite {LANDMARK_KEY} "
                          f"entry keep landmarks=None", count=empty)
        return out
