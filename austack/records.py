"""The records that flow from the readers onwards: where a frame's pixels are (`PixelSource`),
a frame and a session (`FrameRecord`, `SessionRef`, `SessionRecord`), and what was skipped or
could not be read, with the file (`Anomaly`, `AnomalyReport`). Below the readers
(`austack.datasets`), the frame decoder (`austack.faces.decode`) and the store, which all
speak them; the conventions of their fields are the readers' (`austack.datasets.base`).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Literal

import numpy as np

PixelKind = Literal["image", "zip", "video"]


@dataclass(frozen=True, slots=True)
class PixelSource:
    """Where one frame's pixels are: an image file, a member of a zip, or a video frame."""

    kind: PixelKind
    path: str                  # image file, zip archive, or video file
    member: str | None = None  # zip member name (kind == "zip")
    index: int | None = None   # 0-based decode index (kind == "video")

    def describe(self) -> str:
        if self.kind == "zip":
            return f"{self.path}:{self.member}"
        if self.kind == "video":
            return f"{self.path}#{self.index}"
        return self.path


@dataclass(slots=True)
class FrameRecord:
    subject: str
    session: str
    frame: int
    source: PixelSource
    labels: np.ndarray                       # int8 (n_au,), 1 / 0 / -1
    intensities: np.ndarray | None = None    # int8 (n_au,), 0..5 / -1
    landmarks: np.ndarray | None = None      # float32 (K, 2), 0-based
    split: str | None = None                 # the dataset's own split (Aff-Wild2 Train_Set ...)


@dataclass(frozen=True, slots=True)
class SessionRef:
    """A handle on one session, cheap to pickle so that workers can each read one."""

    subject: str
    session: str
    label_file: str


@dataclass(slots=True)
class SessionRecord:
    subject: str
    session: str
    frames: list[FrameRecord]
    landmark_scheme: int | None = None      # 49, 66 or 68 when landmarks shipped


ANOMALY_KINDS = {
    "missing_image": "a labelled frame whose image, zip member or crop does not exist",
    "missing_landmarks": "a frame or session whose shipped landmark file is missing",
    "count_mismatch": "a label file and its frames/landmarks/video disagree in length",
    "unknown_code": "a label value the dataset does not define (kept as unknown, -1)",
    "invalid_row": "a row the dataset marks invalid (e.g. Aff-Wild2 all -1) or a malformed row, dropped",
    "out_of_order": "label rows not in frame order (read sorted; reported once per file)",
    "unreadable": "a file that exists but cannot be parsed or decoded",
    "unexpected_file": "a file in the layout that matches no expected name",
    "no_face": "a frame with no usable landmarks, kept with face=0 and a grey image",
}


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str
    path: str
    detail: str
    count: int = 1


@dataclass
class AnomalyReport:
    """Everything a reader (or prepare) skipped, dropped or could not read, with the file."""

    items: list[Anomaly] = field(default_factory=list)

    def add(self, kind: str, path: str | os.PathLike, detail: str, count: int = 1) -> None:
        if kind not in ANOMALY_KINDS:
            raise ValueError(f"unknown anomaly kind {kind!r}; expected one of {sorted(ANOMALY_KINDS)}")
        self.items.append(Anomaly(kind, str(path), detail, count))

    def extend(self, other: "AnomalyReport") -> None:
        self.items.extend(other.items)

    def counts(self) -> Counter:
        """Total count per anomaly kind."""
        c: Counter = Counter()
        for a in self.items:
            c[a.kind] += a.count
        return c

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Anomaly]:
        return iter(self.items)
