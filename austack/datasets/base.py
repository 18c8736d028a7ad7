"""What every raw-dataset reader yields, and the reader base class.

Data flows one way: a reader turns a raw distribution, laid out exactly as the dataset ships
it, into `SessionRecord`s of `FrameRecord`s. Readers never decode pixels (see `pixels.py`) and
never align; they only say where each frame's pixels are, what its labels are, and which
landmarks shipped with it. Everything odd they meet goes into an `AnomalyReport`, with the file.

Conventions, fixed here for all readers:
- `labels` are int8 in the protocol's AU order: 1 present, 0 absent, -1 unknown.
- `intensities` are int8 0..5 (-1 unknown) where the dataset codes intensity, else None.
- `landmarks` are float32 (K, 2) in 0-based pixel coordinates of the raw frame (MATLAB's
  1-based coordinates are converted on reading); K is 49, 66 or 68 (`landmark_scheme`).
- `frame` is the dataset's own frame number (BP4D's CSV column 0, DISFA's label line number).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Iterator, Literal

import numpy as np

from ..errors import ConfigError, DatasetNotFoundError
from ..protocols import Protocol, load_protocol
from ..registry import Registry

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
    "invalid_row": "a row the dataset marks invalid (e.g. Aff-Wild2 all -1), dropped",
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


class Reader:
    """Base class of the per-dataset readers.

    Subclasses declare `dataset` (the registry name), `protocol` (default protocol name; an
    instance sets it to the id of the protocol it actually reads with) and
    `expected` (the layout, in words and glob patterns, used in `DatasetNotFoundError`), and
    implement `verify`, `sessions` and `read_session`.
    """

    dataset: ClassVar[str]
    protocol: ClassVar[str]
    expected: ClassVar[str]

    def __init__(self, root: str | os.PathLike, **options):
        self.root = Path(root).expanduser().resolve()
        self.options = options
        if not self.root.is_dir():
            raise self.not_found(f"{self.root} is not a folder")
        self.verify()

    def use_protocol(self, name: str | None) -> Protocol:
        """Load the protocol to read labels with (default: the class's), check that it is this
        dataset's, and record it: `label_protocol`, and its id in `protocol` (read by prepare)."""
        proto = load_protocol(name or type(self).protocol)
        if proto.dataset != self.dataset:
            raise ConfigError(f"protocol {proto.id} is for {proto.dataset}, not {self.dataset}; "
                              f"pass a {self.dataset} protocol", path=proto.path)
        self.label_protocol = proto
        self.protocol = proto.id      # type: ignore[misc]
        return proto

    def not_found(self, why: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"{self.dataset}: {why}. Expected a raw {self.dataset} distribution at {self.root}: "
            f"{self.expected}", path=self.root)

    # --- to implement -------------------------------------------------------------------
    def verify(self) -> None:
        """Raise `DatasetNotFoundError` naming the first missing path if root is not this dataset."""
        raise NotImplementedError

    def sessions(self) -> list[SessionRef]:
        """All sessions, sorted by (subject, session)."""
        raise NotImplementedError

    def read_session(self, ref: SessionRef, anomalies: AnomalyReport) -> SessionRecord:
        """Frames of one session in frame order; anomalies go to `anomalies`."""
        raise NotImplementedError

    # --- provided -----------------------------------------------------------------------
    def read_all(self) -> tuple[list[SessionRecord], AnomalyReport]:
        report = AnomalyReport()
        return [self.read_session(ref, report) for ref in self.sessions()], report


READERS: Registry[type[Reader]] = Registry("dataset reader")
register_reader = READERS.register


def create_reader(dataset: str, root: str | os.PathLike, **options) -> Reader:
    """The reader registered as `dataset`, opened on `root`. `None` options keep defaults."""
    cls = READERS.get(dataset)
    return cls(root, **{k: v for k, v in options.items() if v is not None})


def list_readers(pattern: str = "*") -> list[str]:
    return READERS.list(pattern)
