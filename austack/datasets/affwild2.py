"""Aff-Wild2 (ABAW AU detection challenge): per-video occurrence tables over 112x112 aligned crops.

Layout::

    <any>/AU_Detection_Challenge/Train_Set/<video>.txt       (older editions: <any>/AU_Set/,
    <any>/AU_Detection_Challenge/Validation_Set/<video>.txt   with Training_Set/ for Train_Set)
    cropped_aligned/<video>/00001.jpg

Each table has the header `AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26` and one row
per video frame: 0/1, or -1 in every column for a frame that is not annotated (dropped and
counted). Row i (1-based after the header) is crop `{i:05d}.jpg`; crops are missing where no
face was found (skipped and counted). Two-person videos come as `<video>_left` / `<video>_right`,
each its own table and crop folder. Videos are the units: subject = video name, one session
("1"), and `FrameRecord.split` = the annotation set. No landmarks ship: crops are aligned already.

Rows are positional (row i is frame i whatever it holds), so the frame rule of `base.py` has
nothing to sort or repeat here; a row without exactly 12 cells (a blank line inside the table
too) is dropped as `invalid_row` and its frame number stays used; trailing blank lines are
ignored. A cell that is not strictly an integer, or a value other than 0/1 in an annotated row,
is stored as -1 and reported (`unknown_code`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, RawDataError
from ._parse import is_blank, parse_ints, read_rows, report_rows
from .base import AnomalyReport, FrameRecord, PixelSource, Reader, SessionRecord, SessionRef, register_reader

HEADER = "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"
HEADER_AUS = tuple(int(c[2:]) for c in HEADER.split(","))
ANNOTATION_DIRS = ("AU_Detection_Challenge", "AU_Set")
SETS = {"Train_Set": "Train_Set", "Training_Set": "Train_Set", "Validation_Set": "Validation_Set"}
CROPS = "cropped_aligned"
SESSION = "1"
SEARCH_DEPTH = 3     # how deep under the root the annotation and crop folders are looked for


def find_folders(root: Path, names: tuple[str, ...], depth: int = SEARCH_DEPTH) -> list[Path]:
    """Folders named one of `names` within `depth` levels of `root`, never entering crop folders
    (they hold hundreds of thousands of files)."""
    found, level = [], [root]
    for _ in range(depth):
        nxt = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if not e.is_dir():
                    continue
                if e.name in names:
                    found.append(Path(e.path))
                elif e.name != CROPS:
                    nxt.append(Path(e.path))
        level = nxt
    return found


@register_reader("affwild2")
class AffWild2Reader(Reader):
    dataset = "affwild2"
    protocol = "affwild2-official"
    expected = (f"<any>/AU_Detection_Challenge/{{Train_Set,Validation_Set}}/<video>.txt annotations "
                f"(or <any>/AU_Set/...) with header {HEADER}, and {CROPS}/<video>/00001.jpg crops")

    def configure(self) -> None:
        missing = [a for a in self.label_protocol.aus if a not in HEADER_AUS]
        if missing:
            raise ConfigError(f"protocol {self.label_protocol.id} asks for AU {missing}, which Aff-Wild2 does not code")

    def verify(self) -> None:
        self.set_dirs: list[tuple[str, Path]] = [
            (SETS[s.name], s) for top in find_folders(self.root, ANNOTATION_DIRS)
            for s in sorted(top.iterdir()) if s.is_dir() and s.name in SETS]
        if not self.set_dirs:
            raise self.not_found(f"no AU_Detection_Challenge/ (or AU_Set/) folder with Train_Set/ or "
                                 f"Validation_Set/ within {SEARCH_DEPTH} levels of {self.root}")
        crops = find_folders(self.root, (CROPS,))
        if not crops:
            raise self.not_found(f"no {CROPS}/ folder within {SEARCH_DEPTH} levels of {self.root}")
        self.crops = crops[0]

    def sessions(self) -> list[SessionRef]:
        refs = [SessionRef(p.stem, SESSION, str(p)) for _, folder in self.set_dirs
                for p in folder.iterdir() if p.suffix == ".txt"]
        return sorted(refs, key=lambda r: (r.subject, r.label_file))

    def _read_session(self, ref: SessionRef, anomalies: AnomalyReport) -> SessionRecord:
        path = Path(ref.label_file)
        split = SETS[path.parent.name]
        numbers, table, valid = _read_table(path, anomalies)       # frame numbers, (R, 12) x2
        columns = [HEADER_AUS.index(a) for a in self.label_protocol.aus]
        invalid = ((table == -1) & valid).all(axis=1)
        if invalid.any():
            anomalies.add("invalid_row", path, f"{int(invalid.sum())} frame(s) marked -1 in every column "
                          f"(not annotated) dropped", int(invalid.sum()))
        labels, bad = self.label_protocol.label.encode(table[:, columns])
        bad = (bad | ~valid[:, columns]) & ~invalid[:, None]
        labels[~valid[:, columns]] = -1
        if bad.any():
            anomalies.add("unknown_code", path, f"{int(bad.sum())} values other than 0/1 in annotated rows, "
                          f"stored as unknown (-1)", int(bad.sum()))

        folder = self.crops / ref.subject
        present = set(os.listdir(folder)) if folder.is_dir() else set()
        records, absent = [], []
        for i in np.flatnonzero(~invalid):
            frame = int(numbers[i])
            name = f"{frame:05d}.jpg"
            if name not in present:
                absent.append(frame)
                continue
            records.append(FrameRecord(ref.subject, ref.session, frame, PixelSource("image", str(folder / name)),
                                       labels[i], split=split))
        if absent:
            shown = ", ".join(map(str, absent[:10])) + (" ..." if len(absent) > 10 else "")
            why = "" if present else " (the folder does not exist)"
            anomalies.add("missing_image", folder, f"{len(absent)} annotated frame(s) of {ref.subject} have no "
                          f"crop{why}: {shown}; skipped", len(absent))
        return SessionRecord(ref.subject, ref.session, records)


def _read_table(path: Path, anomalies: AnomalyReport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame numbers, values (R, 12), mask of integer cells) of the rows with 12 cells."""
    rows = read_rows(path, "Aff-Wild2 annotation")
    header = ",".join(c.strip() for c in rows[0][1]) if rows else ""
    if header != HEADER:
        raise RawDataError(f"Aff-Wild2 annotation {path} must start with the header {HEADER!r}; "
                           f"found {header[:80]!r}", path=path)
    data = rows[1:]
    while data and is_blank(data[-1][1]):
        data.pop()          # trailing blank lines only: one inside still holds its frame number
    width = len(HEADER_AUS)
    report_rows(anomalies, path, [line for line, cells in data if len(cells) != width],
                f"without exactly {width} cells")
    kept = [(frame, cells) for frame, (_, cells) in enumerate(data, start=1) if len(cells) == width]
    values, valid = parse_ints(np.array([cells for _, cells in kept], dtype=str).reshape(len(kept), width))
    return np.array([frame for frame, _ in kept], dtype=np.int64), values, valid
