"""What every raw-dataset reader yields, and the reader base class.

Data flows one way: a reader turns a raw distribution, laid out exactly as the dataset ships
it, into `SessionRecord`s of `FrameRecord`s. Readers never decode pixels (see `austack.faces.decode`) and
never align; they only say where each frame's pixels are, what its labels are, and which
landmarks shipped with it. Everything odd they meet goes into an `AnomalyReport`, with the file.

Conventions, fixed here for all readers:
- `labels` are int8 in the protocol's AU order: 1 present, 0 absent, -1 unknown.
- `intensities` are int8 0..5 (-1 unknown) where the dataset codes intensity, else None.
- `landmarks` are float32 (K, 2) in 0-based pixel coordinates of the raw frame (MATLAB's
  1-based coordinates are converted on reading); K is 49, 66 or 68 (`landmark_scheme`).
- `frame` is the dataset's own frame number (BP4D's CSV column 0, DISFA's label line number).

Bad data costs the least it can, the same way in every reader:
- Integer cells are parsed strictly (`_parse.parse_int`): ASCII digits, a leading `-` only in
  label cells, int64 range. A label cell that is not an integer, or a code the dataset does
  not define, is stored as unknown (-1) and reported (`unknown_code`); `0.5` is never rounded.
- Frame numbers: a row whose frame cell is not a non-negative integer is dropped
  (`invalid_row`); of rows repeating a frame number the first is kept and the others dropped
  (`invalid_row`); rows out of frame order are read sorted by frame and the disorder reported
  once per file (`out_of_order`). So every session comes out with unique, ascending frames.
- A row with more or fewer cells than its header (or its format) has is dropped (`invalid_row`):
  a cell too many must never shift the labels.
- Any data error while reading one session (`RawDataError`, `ValueError`, `OverflowError`,
  `UnicodeDecodeError`, `OSError`, ...) costs that session only: `read_session` reports one
  `unreadable` anomaly naming the file and returns the session with no frames. Anomalies the
  session had reported before the error are dropped with it.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DatasetNotFoundError, RawDataError, did_you_mean
from ..protocols import Protocol, load_protocol
from ..records import (ANOMALY_KINDS, Anomaly, AnomalyReport, FrameRecord, PixelKind, PixelSource,  # noqa: F401
                       SessionRecord, SessionRef)
from ..registry import Registry

# Errors that mean "this session's files are bad", turned into an `unreadable` anomaly.
# IndexError and KeyError are left out on purpose: they mean a bug here, which must stay loud.
DATA_ERRORS = (RawDataError, ValueError, OverflowError, UnicodeDecodeError, OSError, csv.Error)

_KIND_WORDS = {int: "an integer", str: "a string", float: "a number", bool: "true or false"}


@dataclass(frozen=True)
class Option:
    """One reader option, declared as class data: name, default, what it accepts, what it means."""

    name: str
    default: Any
    help: str
    kind: type | tuple[type, ...] | None = None   # accepted types (None: anything)
    choices: tuple | None = None                  # accepted values (None: any of `kind`)

    def check(self, dataset: str, value: Any) -> Any:
        """`value` as the reader will use it; None means the default."""
        if value is None:
            return self.default
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{dataset} reader: {self.name} must be one of "
                              f"{', '.join(map(repr, self.choices))}, got {value!r}")
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,) if self.kind else ()
        if int in kinds and isinstance(value, np.integer):
            value = int(value)
        if kinds and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
            what = " or ".join(_KIND_WORDS.get(k, k.__name__) for k in kinds)
            raise ConfigError(f"{dataset} reader: {self.name} must be {what}, got {value!r}")
        return value


PROTOCOL_OPTION = Option("protocol", None, "protocol whose AUs and label rule are read "
                         "(name, name@vN or YAML path; default: the reader's)", kind=(str, os.PathLike))


def _plain(value: Any) -> Any:
    """An option value as it is recorded in `reader.options` (and in the store): plain data."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


class Reader:
    """Base class of the per-dataset readers.

    Subclasses declare `dataset` (the registry name), `protocol` (default protocol name; an
    instance sets it to the id of the protocol it actually reads with), `expected` (the layout,
    in words and glob patterns, used in `DatasetNotFoundError`) and `declared_options` (their
    `Option`s; `protocol` is every reader's), and implement `verify`, `sessions` and `_read_session`.

    The constructor does the common work once: it checks the options (an unknown one is an error
    listing the known ones), sets each as an attribute, resolves the protocol into
    `label_protocol`, calls `configure()` (a subclass's own checks), then checks the root and
    calls `verify()`. `read_session` wraps `_read_session` so that bad data costs one session.
    """

    dataset: ClassVar[str]
    protocol: ClassVar[str]
    expected: ClassVar[str]
    declared_options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, root: str | os.PathLike, **options):
        declared = {o.name: o for o in (*self.declared_options, PROTOCOL_OPTION)}
        for name in options:
            if name not in declared:
                raise ConfigError(f"{self.dataset} reader: unknown option {name!r}{did_you_mean(name, declared)} "
                                  f"(options are {', '.join(declared)})")
        values = {name: o.check(self.dataset, options.get(name)) for name, o in declared.items()}
        for name, value in values.items():
            if name != "protocol":
                setattr(self, name, value)
        self.root = Path(root).expanduser().resolve()
        self.use_protocol(values["protocol"])
        self.configure()
        # What was asked for, as plain data (prepare records it in the store).
        self.options = {**{k: _plain(v) for k, v in values.items()}, "protocol": self.label_protocol.id}
        if not self.root.is_dir():
            raise self.not_found(f"{self.root} is not a folder")
        self.verify()

    def use_protocol(self, name: str | os.PathLike | None) -> Protocol:
        """Load the protocol to read labels with (default: the class's), check that it is this
        dataset's, and record it: `label_protocol`, and its id in `protocol` (read by prepare)."""
        proto = load_protocol(name or self.protocol)
        if proto.dataset != self.dataset:
            raise ConfigError(f"protocol {proto.id} is for {proto.dataset}, not {self.dataset}; "
                              f"pass a {self.dataset} protocol", path=proto.path)
        self.label_protocol = proto
        if not isinstance(getattr(type(self), "protocol", None), property):
            self.protocol = proto.id      # type: ignore[misc]
        return proto

    def not_found(self, why: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"{self.dataset}: {why}. Expected a raw {self.dataset} distribution at {self.root}: "
            f"{self.expected}", path=self.root)

    # --- to implement -------------------------------------------------------------------
    def configure(self) -> None:
        """Check or convert option values beyond their declared type (optional)."""

    def verify(self) -> None:
        """Raise `DatasetNotFoundError` naming the first missing path if root is not this dataset."""
        raise NotImplementedError

    def sessions(self) -> list[SessionRef]:
        """All sessions, sorted by (subject, session)."""
        raise NotImplementedError

    def _read_session(self, ref: SessionRef, anomalies: AnomalyReport) -> SessionRecord:
        """Frames of one session in frame order; anomalies go to `anomalies`. May raise any of
        `DATA_ERRORS` on bad data: `read_session` turns that into an `unreadable` anomaly."""
        raise NotImplementedError

    # --- provided -----------------------------------------------------------------------
    def read_session(self, ref: SessionRef, anomalies: AnomalyReport) -> SessionRecord:
        """Frames of one session in frame order, or none (one `unreadable` anomaly) if its
        files cannot be read. A ref whose label file does not exist is a caller's error."""
        if not os.path.exists(ref.label_file):
            raise RawDataError(f"{ref.label_file} does not exist; pass a SessionRef from sessions()",
                               path=ref.label_file)
        local = AnomalyReport()
        try:
            record = self._read_session(ref, local)
        except ConfigError:      # a ValueError too, but the user's to fix, not the data's
            raise
        except DATA_ERRORS as e:
            path = getattr(e, "path", None) or getattr(e, "filename", None) or ref.label_file
            anomalies.add("unreadable", path, f"{_one_line(e)}; session {ref.subject}/{ref.session} skipped")
            return SessionRecord(ref.subject, ref.session, [])
        anomalies.extend(local)
        return record

    def read_all(self) -> tuple[list[SessionRecord], AnomalyReport]:
        report = AnomalyReport()
        return [self.read_session(ref, report) for ref in self.sessions()], report


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, RawDataError) else f"{type(e).__name__}: {text}"


READERS: Registry[type[Reader]] = Registry("dataset reader")
register_reader = READERS.register


def create_reader(dataset: str, root: str | os.PathLike, **options) -> Reader:
    """The reader registered as `dataset`, opened on `root`. `None` options keep defaults."""
    cls = READERS.get(dataset)
    return cls(root, **{k: v for k, v in options.items() if v is not None})


def list_readers(pattern: str = "*") -> list[str]:
    return READERS.list(pattern)
