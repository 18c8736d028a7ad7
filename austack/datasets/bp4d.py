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
- codes 0 / 1 / 9 (9 -> -1); any other value, or a cell that is not strictly an integer
  (`0.5`, `²`, `1e400`), is stored as -1 and reported (`unknown_code`).
- a row with more or fewer cells than the header is dropped (`invalid_row`): an extra cell
  would shift every label after it. Frame numbers follow the rule in `base.py`.
- CSV frames are 1-based, contiguous and usually start far above 1; a row whose jpg is missing
  is reported (`missing_image`) and not yielded, since it has no pixels.
- `2DFeatures` entries are matched to frames by count: as many entries as CSV data rows means
  one per row, in file order; as many as jpgs in the session folder means one per jpg, in
  frame-number order (if both counts agree, one per row, the public code's reading). Any other
  count is reported (`count_mismatch`) and the session's frames keep `landmarks=None`: a frame
  never gets another frame's landmarks. A missing or unreadable file is reported too.
  Coordinates are converted from MATLAB's 1-based pixels to 0-based.

Options (keyword arguments of the constructor, and of `create_reader("bp4d", root, ...)`):
    frame_offset: int = 0   CSV frame f is image f + frame_offset (public code disagrees; 0 is
                            the common reading, -1 the other).
    protocol: str           protocol whose AUs and label rule are read (default bp4d-3fold@v1).

Citation: X. Zhang, L. Yin, J. F. Cohn et al., "BP4D-Spontaneous: a high-resolution spontaneous
3D dynamic facial expression database", Image and Vision Computing 32(10), 2014.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import RawDataError
from ..protocols import LabelRule
from ._matlab import read_v73_cells
from ._parse import is_blank, order_frames, parse_ints, read_rows, report_rows
from .base import (AnomalyReport, FrameRecord, Option, PixelSource, Reader, SessionRecord, SessionRef,
                   register_reader)

LABEL_DIR = "AUCoding/AU_OCC"
FRAME_DIRS = ("Sequences(2D+3D)", "Sequences_2D+3D", "2D+3D")
LANDMARK_DIR = "2DFeatures"
LANDMARK_KEY = "fit/pred"
LANDMARK_POINTS = 49
LABEL_FILE = re.compile(r"([FM]\d{3})_(T\d+)\.csv", re.IGNORECASE)
FRAME_FILE = re.compile(r"(\d+)\.jpg", re.IGNORECASE)
AU_NAME = re.compile(r"(?:AU)?\s*0*([0-9]+)", re.IGNORECASE)   # "12", "AU12", "au 12", "AU012"


# --- AU_OCC csv files (shared with BP4D+) ---------------------------------------------------------

@dataclass
class OccTable:
    """One AU_OCC CSV: rows in frame order, raw codes in the protocol's AU order."""

    path: Path
    style: str            # "legacy" (0,1,...,99) or "named" (only coded AUs)
    frames: np.ndarray    # int64 (R,), the CSV's frame numbers, unique and ascending
    codes: np.ndarray     # int64 (R, n_au); meaningful where `valid`
    valid: np.ndarray     # bool (R, n_au): the cell is strictly an integer
    rows: np.ndarray      # int64 (R,), each frame's 0-based position among the file's data rows
    n_rows: int           # data rows in the file (blank lines aside), kept or not


def read_occ_csv(path: Path, aus: tuple[int, ...], anomalies: AnomalyReport) -> OccTable:
    """Parse an AU_OCC CSV of either header style. Rows that cannot be used are reported
    (`invalid_row`) and dropped; a file without the protocol's AU columns raises `RawDataError`."""
    rows = [(line, cells) for line, cells in read_rows(path, "BP4D AU_OCC file") if not is_blank(cells)]
    if not rows:
        raise RawDataError(f"{path}: empty; expected a header row, then one row per coded frame", path=path)
    (_, header), data = rows[0], rows[1:]
    style, columns = _au_columns(header, aus, path)
    width = len(header)
    report_rows(anomalies, path, [line for line, cells in data if len(cells) != width],
                f"with a cell count other than the header's {width}")
    whole = [i for i, (_, cells) in enumerate(data) if len(cells) == width]
    frames, keep = order_frames([data[i][1][0] for i in whole], [data[i][0] for i in whole], path, anomalies)
    picked = [whole[k] for k in keep.tolist()]
    cells = np.array([[data[i][1][c] for c in columns] for i in picked], dtype=str).reshape(len(picked), len(aus))
    codes, valid = parse_ints(cells, signed=True)
    return OccTable(path, style, frames, codes, valid, np.array(picked, dtype=np.int64), len(data))


def encode_labels(table: OccTable, rule: LabelRule, aus: tuple[int, ...], anomalies: AnomalyReport) -> np.ndarray:
    """Codes -> int8 labels 1/0/-1 by the protocol's rule; odd codes become -1 and are reported."""
    labels, odd = rule.encode(table.codes)
    labels[~table.valid] = -1
    odd = (odd & table.valid) | ~table.valid
    if odd.any():
        per_au = ", ".join(f"AU{aus[j]} x{odd[:, j].sum()}" for j in np.flatnonzero(odd.any(axis=0)))
        values = sorted({str(v) for v in table.codes[odd & table.valid].tolist()})
        values += ["non-integer"] if (~table.valid).any() else []
        anomalies.add("unknown_code", table.path,
                      f"code(s) {', '.join(values)} ({per_au}) are not 0/1/9; stored as unknown (-1)",
                      count=int(odd.sum()))
    return labels


def _au_columns(header: list[str], aus: tuple[int, ...], path: Path) -> tuple[str, list[int]]:
    cells = [c.strip() for c in header]
    if cells == [str(n) for n in range(len(cells))]:
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
    declared_options = (Option("frame_offset", 0, "CSV frame f is image f + frame_offset (public code "
                               "disagrees: 0 is the common reading, -1 the other)", kind=int),)
    frame_offset: int

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
    def _read_session(self, ref: SessionRef, anomalies: AnomalyReport) -> SessionRecord:
        label_file = Path(ref.label_file)
        aus = self.label_protocol.aus
        table = read_occ_csv(label_file, aus, anomalies)
        try:
            files = self.frame_files(ref, anomalies)
        except RawDataError as e:   # e.g. a corrupt zip: every labelled frame lacks pixels
            anomalies.add("unreadable", e.path or self.frame_folder(ref),
                          f"{e}; the {len(table.frames)} labelled frames of {label_file.name} skipped",
                          count=len(table.frames))
            return SessionRecord(ref.subject, ref.session, [])
        labels = encode_labels(table, self.label_protocol.label, aus, anomalies)
        landmarks = self.landmarks(ref, table, files, anomalies)

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

    def landmarks(self, ref: SessionRef, table: OccTable, files: FrameFiles | None,
                  anomalies: AnomalyReport) -> list[np.ndarray | None] | None:
        """0-based 49x2 landmarks per table row (None where absent), or None for the whole session."""
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
        entries = self._landmark_entries(table, files, len(cells))
        if entries is None:
            jpgs = len(files.sources) if files else 0
            anomalies.add("count_mismatch", path,
                          f"{len(cells)} landmark entries, but {table.n_rows} data rows in {table.path.name} and "
                          f"{jpgs} jpgs in the frame folder: which entry is which frame is unknown; the "
                          f"{rows} frames keep landmarks=None", count=rows)
            return None
        out: list[np.ndarray | None] = []
        empty = 0
        for k in entries:              # k is None only for a row without a jpg: not yielded anyway
            cell = cells[k] if k is not None else None
            ok = cell is not None and np.isfinite(cell).all()
            out.append((cell - 1.0).astype(np.float32) if ok else None)   # MATLAB 1-based -> 0-based pixels
            empty += k is not None and not ok
        if empty:
            anomalies.add("missing_landmarks", path, f"{empty} frames with an empty or non-finite {LANDMARK_KEY} "
                          f"entry keep landmarks=None", count=empty)
        return out

    def _landmark_entries(self, table: OccTable, files: FrameFiles | None, n: int) -> list[int | None] | None:
        """The `fit/pred` entry of each table row, or None when the count fits no convention."""
        if n == table.n_rows:                       # one entry per CSV data row, in file order
            return table.rows.tolist()
        jpgs = sorted(files.sources) if files else []
        if n == len(jpgs):                          # one entry per jpg of the folder, by number
            position = {number: i for i, number in enumerate(jpgs)}
            return [position.get(f + self.frame_offset) for f in table.frames.tolist()]
        return None
