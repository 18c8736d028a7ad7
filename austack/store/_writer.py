"""Writing a store: durable pieces into `OUT.h5.partial/`, then one pass into `OUT.h5`.

Rows arrive a chunk at a time and each chunk is saved whole as its own file, each finished
session as a small marker; nothing is appended in place, so a run killed at any instant
(even mid-write) leaves a partial folder that a resume reads back exactly: the sessions with
a marker, and the chunks whose files exist. `finish` assembles the HDF5 file from the pieces
(`_assemble`) and renames it over `OUT.h5`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets.base import Anomaly
from ..errors import StoreError, StoreExistsError
from ._assemble import assemble
from ._parts import PartDir, anomaly_lists, sweep_leftovers, write_error
from ._provenance import root_attrs
from ._schema import PARTIAL_SUFFIX, StoreSettings

STORE_FILE = "store.h5"   # the finished file, inside the partial folder until renamed


@dataclass
class FrameRows:
    """Consecutive frames of one session, ready to append (images already encoded)."""

    images: list[np.ndarray]
    labels: np.ndarray             # int8 (n, n_au)
    landmarks: np.ndarray          # float32 (n, 49, 2), aligned-image coordinates, NaN without a face
    matrix: np.ndarray             # float32 (n, 2, 3)
    face: np.ndarray               # uint8 (n,)
    landmark_origin: np.ndarray    # uint8 (n,)
    frame: np.ndarray              # int32 (n,)
    split: list[str]               # the dataset's own split per frame, "" where none
    intensities: np.ndarray | None = None
    anomalies: list[Anomaly] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def partial_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


class StoreWriter:
    """Creates or resumes the store at `path` for `settings`.

    - `path` exists: refused unless `force` (then rebuilt; the old file stays until the rename).
    - `path.partial` exists: resumed when `resume` (settings must match, "existing vs new"),
      restarted when `force`, refused otherwise.

    Sessions are numbered 0, 1, ... in write order. `begin_session`/`append`/`end_session`
    write the next one; `write_chunk`/`write_session` write a given one (prepare, which
    keeps the chunks a resume finds unchanged).
    """

    def __init__(self, path: str | os.PathLike, settings: StoreSettings, *, resume: bool = False,
                 force: bool = False):
        self.path = Path(path).expanduser().resolve()
        self.partial = partial_path(self.path)
        self.settings = settings
        sweep_leftovers(self.partial)
        if self.path.exists() and not force and not resume:
            raise StoreExistsError(f"{self.path} already exists; pass --force to rebuild it", path=self.path)
        if self.partial.exists() and not resume:
            if not force:
                raise StoreExistsError(f"{self.partial} is left from an interrupted run; rerun with --resume "
                                       "to continue it or --force to start over", path=self.partial)
            held = PartDir(self.partial, settings)
            if self.partial.is_dir():
                held.lock()   # --force does not pull the folder from under a run still writing it
            _remove(self.partial)
            held.unlock()
        self.parts = PartDir(self.partial, settings)
        if self.partial.exists():
            if self.partial.is_dir():
                self.parts.lock()   # first: opening tidies the folder, which only its one writer may do
            self.parts.open_existing()
        else:
            _make_parent(self.path)
            self.parts.create()
            self.parts.lock()
        self._done = self.parts.done()
        self._current = None

    # --- state ----------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        """Rows of the finished sessions."""
        return sum(m["rows"] for m in self._done)

    def done(self) -> list[tuple[str, str]]:
        """(subject, session) of the sessions already whole in the partial folder, in order."""
        return [(m["subject"], m["session"]) for m in self._done]

    def session_marker(self, index: int) -> dict | None:
        return self._done[index] if index < len(self._done) else None

    def chunk_meta(self, session: int, chunk: int) -> dict | None:
        return self.parts.chunk_meta(session, chunk)

    # --- writing by index -------------------------------------------------------------------
    def write_chunk(self, session: int, chunk: int, rows: FrameRows, *, key: str = "", no_face=()) -> None:
        self.parts.write_chunk(session, chunk, key, rows, no_face)

    def write_session(self, index: int, subject: str, session: str, *, chunks: list[str], rows: int,
                      label_file: str = "", label_sha256: str = "", anomalies: list[Anomaly] = ()) -> None:
        """Mark session `index` whole: its chunks (by key) are all written."""
        marker = {"subject": subject, "session": session, "chunks": list(chunks), "rows": int(rows),
                  "label_file": label_file, "label_sha256": label_sha256, "anomalies": anomaly_lists(anomalies)}
        self.parts.write_session(index, marker)
        if index < len(self._done):
            self._done[index] = marker
        elif index == len(self._done):
            self._done.append(marker)
        else:
            raise StoreError(f"{self.partial}: session {index} written before session {len(self._done)}")

    # --- writing the next session -----------------------------------------------------------
    def begin_session(self, subject: str, session: str, label_file: str = "", label_sha256: str = "") -> None:
        if self._current is not None:
            raise StoreError(f"{self.partial}: session {self._current['subject']} was not ended")
        self._current = {"subject": subject, "session": session, "label_file": label_file,
                         "label_sha256": label_sha256, "chunks": 0, "rows": 0}

    def append(self, rows: FrameRows) -> None:
        """Append frames of the current session (a session may come in several parts)."""
        c = self._current
        if c is None:
            raise StoreError(f"{self.partial}: append() outside begin_session()/end_session()")
        self.write_chunk(len(self._done), c["chunks"], rows)
        c["chunks"] += 1
        c["rows"] += len(rows)

    def end_session(self, anomalies: list[Anomaly] = ()) -> None:
        """Record the current session as whole, with `anomalies` after those of its rows."""
        c, self._current = self._current, None
        self.write_session(len(self._done), c["subject"], c["session"], chunks=[""] * c["chunks"], rows=c["rows"],
                           label_file=c["label_file"], label_sha256=c["label_sha256"], anomalies=anomalies)

    def finish(self, *, source: dict, anomalies: list[Anomaly] = (), sessions: int | None = None,
               synthetic: dict | None = None) -> Path:
        """Assemble the first `sessions` whole sessions (default all) with the reader's
        `anomalies` and provenance into the final file, rename it into place, drop the parts."""
        if self._current is not None:
            raise StoreError(f"{self.partial}: session {self._current['subject']} was not ended")
        markers = self._done if sessions is None else self._done[:sessions]
        target = self.partial / STORE_FILE
        try:
            assemble(self.parts, markers, target, root_attrs(source, synthetic), anomalies)
            os.replace(target, self.path)
        except OSError as e:
            target.unlink(missing_ok=True)
            raise write_error(self.path, e) from None
        self.parts.remove()
        self.parts.unlock()
        return self.path

    def close(self) -> None:
        """Stop without finishing: the partial folder stays, resumable."""
        self.parts.unlock()

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path.parent, e) from None


def _remove(partial: Path) -> None:
    """Drop a partial folder, or an older austack's partial file."""
    import shutil

    if partial.is_dir():
        shutil.rmtree(partial)
    else:
        partial.unlink()
