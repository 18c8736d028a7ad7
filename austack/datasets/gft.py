"""GFT (Sayette Group Formation Task): one video and one AU-occurrence table per participant.

ASSUMED LAYOUT. GFT's raw file layout could not be confirmed from any public source, so this
reader is driven by a declarative `GFTLayout`, and the default below is an assumption, not a
documented fact::

    videos/<ID>.avi          one video per participant, ID = 3-digit group + seat (028C)
    AU_OCC/<ID>.csv          header "frame,AU1,AU2,...", one row per coded frame,
                             values 0 absent / 1 present / 9 unknown, frames 1-based
                             (frame f is video frame f - 1)

If your copy differs, describe it in a YAML file with any of `GFTLayout`'s fields and pass
`layout=path/to/gft-layout.yaml` to the reader (`create_reader("gft", root, layout=...)` or
`prepare(..., reader_options={"layout": ...})`, or `--reader-opt layout=FILE` of `austack prepare`
and `austack inspect`), e.g.::

    videos: Videos/{id}.mp4
    labels: Labels/{id}_AU.csv
    frame_column: Frame
    au_columns: {AU01: 1, AU02: 2, AU04: 4, AU06: 6, AU10: 10, AU12: 12, AU14: 14, AU15: 15, AU23: 23, AU24: 24}
    codes: {0: 0, 1: 1, 9: -1}
    frame_base: 0

Columns the map does not name are ignored; a protocol AU the file lacks makes the file
unreadable (its session is skipped and reported). Rows follow the rules of `base.py`: as many
cells as the header (else `invalid_row`), the frame rule, strict integers (a cell that is not
one, or a value `codes` does not map, is stored as -1 and reported `unknown_code`).
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..errors import ConfigError, RawDataError
from ..faces.decode import video_frame_count
from ._parse import is_blank, order_frames, parse_int, parse_ints, read_rows, report_rows
from .base import (AnomalyReport, FrameRecord, Option, PixelSource, Reader, SessionRecord, SessionRef,
                   register_reader)

SESSION = "1"   # one recording per participant


@dataclass(frozen=True)
class GFTLayout:
    """Where GFT's files are and how its label tables are coded. `{id}` stands for a participant."""

    videos: str = "videos/{id}.avi"
    labels: str = "AU_OCC/{id}.csv"
    id_pattern: str = r"\d{3}[A-C]"
    frame_column: str = "frame"
    au_columns: dict[str, int] = field(default_factory=lambda: {
        f"AU{a}": a for a in (1, 2, 4, 6, 7, 10, 11, 12, 14, 15, 17, 23, 24)})
    codes: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 1, 9: -1})  # raw -> 1/0/-1
    frame_base: int = 1       # the label frame number of the video's first frame
    delimiter: str = ","

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "GFTLayout":
        path = Path(path).expanduser()
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read GFT layout file {path}: {e}") from None
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(raw, dict) or set(raw) - names:
            extra = sorted(set(raw) - names) if isinstance(raw, dict) else raw
            raise ConfigError(f"GFT layout file {path}: unknown key(s) {extra}; valid keys: {sorted(names)}")
        try:
            if "au_columns" in raw:
                raw["au_columns"] = {str(k): _yaml_int(v) for k, v in raw["au_columns"].items()}
            if "codes" in raw:
                raw["codes"] = {_yaml_int(k): _yaml_int(v) for k, v in raw["codes"].items()}
                if not set(raw["codes"].values()) <= {-1, 0, 1}:
                    raise ValueError("codes must map raw values to 1, 0 or -1")
            if "frame_base" in raw:
                raw["frame_base"] = _yaml_int(raw["frame_base"])
        except (AttributeError, TypeError, ValueError) as e:
            raise ConfigError(f"GFT layout file {path}: {e}") from None
        layout = cls(**raw)
        layout.check()
        return layout

    def check(self) -> None:
        for name in ("videos", "labels"):
            if "{id}" not in getattr(self, name):
                raise ConfigError(f"GFT layout: {name} pattern {getattr(self, name)!r} must contain {{id}}")
        re.compile(self.id_pattern)

    def path(self, root: Path, which: str, pid: str) -> Path:
        return root / getattr(self, which).replace("{id}", pid)

    def find_ids(self, root: Path) -> dict[str, Path]:
        """Participant id -> label file, for every label file the pattern matches."""
        head, _, tail = self.labels.partition("{id}")
        regex = re.compile(re.escape(head) + f"({self.id_pattern})" + re.escape(tail))
        found = {}
        for p in sorted(root.glob(self.labels.replace("{id}", "*"))):
            m = regex.fullmatch(p.relative_to(root).as_posix())
            if m:
                found[m.group(1)] = p
        return found

    def describe(self) -> str:
        return (f"{self.labels} label tables (header {self.frame_column},AU..., codes {self.codes}) and "
                f"{self.videos} videos, {{id}} matching {self.id_pattern}")


def _yaml_int(value) -> int:
    """An integer from a layout file, strictly: 1.5 or "1.5" is an error, never 1."""
    number = parse_int(value) if isinstance(value, str) else value
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValueError(f"{value!r} is not an integer")
    return number


@register_reader("gft")
class GftReader(Reader):
    dataset = "gft"
    protocol = "gft-official"
    expected = GFTLayout().describe() + " (the ASSUMED default layout; override with layout=<yaml>)"

    declared_options = (Option("layout", None, "a GFTLayout, or the YAML file describing one (default: "
                               "the assumed layout above)", kind=(str, os.PathLike, GFTLayout)),)
    layout: GFTLayout

    def configure(self) -> None:
        given = self.layout
        self.layout = given if isinstance(given, GFTLayout) else (
            GFTLayout.from_yaml(given) if given is not None else GFTLayout())
        self.layout.check()
        if given is not None:
            self.expected = self.layout.describe()

    def verify(self) -> None:
        self.label_files = self.layout.find_ids(self.root)
        if not self.label_files:
            raise self.not_found(f"no label file matches {self.layout.labels} (id {self.layout.id_pattern}) "
                                 f"under {self.root}")

    def sessions(self) -> list[SessionRef]:
        return [SessionRef(pid, SESSION, str(p)) for pid, p in sorted(self.label_files.items())]

    def _read_session(self, ref: SessionRef, anomalies: AnomalyReport) -> SessionRecord:
        path = Path(ref.label_file)
        frames, raw, valid = self._read_table(path, anomalies)
        codes = self.layout.codes
        labels = np.full(raw.shape, -1, np.int8)
        defined = np.isin(raw, list(codes)) & valid
        for value, label in codes.items():
            labels[(raw == value) & valid] = label
        if not defined.all():
            bad = sorted(set(raw[~defined & valid].tolist())) + (["non-integer"] if (~valid).any() else [])
            anomalies.add("unknown_code", path, f"values {bad} are not among the layout's codes "
                          f"{sorted(codes)}; stored as unknown (-1)", int((~defined).sum()))

        video = self.layout.path(self.root, "videos", ref.subject)
        index = frames - self.layout.frame_base
        if not video.is_file():
            anomalies.add("missing_image", video, f"no video for {ref.subject} ({self.layout.videos}); "
                          f"its {len(frames)} labelled frames are skipped", len(frames))
            return SessionRecord(ref.subject, ref.session, [])
        try:
            available = video_frame_count(video).container
        except RawDataError as e:
            anomalies.add("unreadable", video, f"{e}; {len(frames)} labelled frames skipped", len(frames))
            return SessionRecord(ref.subject, ref.session, [])
        keep = (index >= 0) & (index < (available if available is not None else np.inf))
        if not keep.all():
            anomalies.add("count_mismatch", video, f"{int((~keep).sum())} labelled frames of {path.name} fall "
                          f"outside the video's {available} frames and are skipped", int((~keep).sum()))
        records = [FrameRecord(ref.subject, ref.session, int(frames[i]),
                               PixelSource("video", str(video), index=int(index[i])), labels[i])
                   for i in np.flatnonzero(keep)]
        return SessionRecord(ref.subject, ref.session, records)

    def _read_table(self, path: Path, anomalies: AnomalyReport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frame numbers, raw codes in protocol AU order, mask of integer cells) of one table."""
        rows = [(line, cells) for line, cells in read_rows(path, "GFT label file", self.layout.delimiter)
                if not is_blank(cells)]
        if not rows:
            raise RawDataError(f"GFT label file {path} is empty", path=path)
        header = [c.strip() for c in rows[0][1]]
        by_au = {au: header.index(col) for col, au in self.layout.au_columns.items() if col in header}
        missing = [a for a in self.label_protocol.aus if a not in by_au]
        if self.layout.frame_column not in header or missing:
            lacks = ([self.layout.frame_column] if self.layout.frame_column not in header else []) + [
                name for name, au in self.layout.au_columns.items() if au in missing] + [
                f"AU{a} (no column mapped)" for a in missing if a not in self.layout.au_columns.values()]
            raise RawDataError(f"GFT label file {path}: header lacks {', '.join(lacks)} (header: "
                               f"{','.join(header)}); describe your columns with layout=<yaml>", path=path)
        data = rows[1:]
        report_rows(anomalies, path, [line for line, cells in data if len(cells) != len(header)],
                    f"with a cell count other than the header's {len(header)}")
        data = [(line, cells) for line, cells in data if len(cells) == len(header)]
        frame_col = header.index(self.layout.frame_column)
        frames, keep = order_frames([c[frame_col] for _, c in data], [line for line, _ in data], path, anomalies)
        cols = [by_au[a] for a in self.label_protocol.aus]
        cells = np.array([[data[i][1][c] for c in cols] for i in keep.tolist()], dtype=str)
        raw, valid = parse_ints(cells.reshape(len(keep), len(cols)), signed=True)
        return frames, raw, valid
