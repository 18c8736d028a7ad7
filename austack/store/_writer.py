"""Writing a store session by session, into `OUT.h5.partial`, renamed to `OUT.h5` at the end.

Only one session's rows are in memory at a time. After each session the rows, its anomalies
and its row in `sessions` are written, in that order, and the file is flushed: a run killed at
any point leaves a partial file whose `sessions` table lists exactly the sessions that are
whole, and `resume=True` cuts everything after the last of them and carries on.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..datasets.base import Anomaly
from ..errors import StoreError, StoreExistsError, StoreMismatchError
from ._schema import (ANOMALY_DTYPE, JPEG_CHUNK_ROWS, META_CHUNK_ROWS, PARTIAL_SUFFIX, SCHEMA_VERSION,
                      SESSION_DTYPE, StoreSettings, frame_columns, text)


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
    """

    def __init__(self, path: str | os.PathLike, settings: StoreSettings, *, resume: bool = False,
                 force: bool = False):
        self.path = Path(path).expanduser().resolve()
        self.partial = partial_path(self.path)
        self.settings = settings
        if self.path.exists() and not force and not resume:
            raise StoreExistsError(f"{self.path} already exists; pass --force to rebuild it", path=self.path)
        if self.partial.exists() and not resume:
            if not force:
                raise StoreExistsError(f"{self.partial} is left from an interrupted run; rerun with --resume "
                                       "to continue it or --force to start over", path=self.partial)
            self.partial.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.partial.exists():
            self._open_partial()
        else:
            self._create()
        self._digest = None
        self._current = None
        self._start = self.rows

    # --- opening ------------------------------------------------------------------------
    def _create(self) -> None:
        s = self.settings
        self.f = f = h5py.File(self.partial, "w")
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["complete"] = False
        for k, v in s.attrs().items():
            f.attrs[k] = v
        if s.image_encoding == "jpeg":
            f.create_dataset("images", (0,), maxshape=(None,), dtype=h5py.vlen_dtype(np.uint8),
                             chunks=(JPEG_CHUNK_ROWS,))
        else:
            f.create_dataset("images", (0, s.size, s.size, 3), maxshape=(None, s.size, s.size, 3),
                             dtype=np.uint8, chunks=(1, s.size, s.size, 3))
        for name, (dtype, shape) in frame_columns(len(s.aus), s.with_intensities).items():
            f.create_dataset(name, (0, *shape), maxshape=(None, *shape), dtype=dtype,
                             chunks=(META_CHUNK_ROWS, *shape))
        f.create_dataset("sessions", (0,), maxshape=(None,), dtype=SESSION_DTYPE, chunks=(256,))
        f.create_dataset("anomalies", (0,), maxshape=(None,), dtype=ANOMALY_DTYPE, chunks=(256,))
        f.flush()

    def _open_partial(self) -> None:
        try:
            self.f = f = h5py.File(self.partial, "r+")
        except OSError as e:
            raise StoreError(f"{self.partial} cannot be opened to resume ({e}); it was probably killed while "
                             "writing: rerun with --force to start over", path=self.partial) from None
        if f.attrs.get("schema_version") != SCHEMA_VERSION:
            f.close()
            raise StoreMismatchError(f"{self.partial}: schema_version existing {f.attrs.get('schema_version')!r} "
                                     f"vs new {SCHEMA_VERSION}; rerun with --force", path=self.partial)
        diffs = StoreSettings.from_attrs(f.attrs).differences(self.settings)
        if diffs:
            f.close()
            raise StoreMismatchError(f"cannot resume {self.partial} with other settings ({'; '.join(diffs)}); "
                                     "rerun with the original settings, or with --force to start over",
                                     path=self.partial)
        sessions = f["sessions"]
        rows = int(sessions[-1]["stop"]) if len(sessions) else 0
        kept_anomalies = int(sessions[-1]["anomaly_stop"]) if len(sessions) else 0
        for name in ["images", *frame_columns(len(self.settings.aus), self.settings.with_intensities)]:
            f[name].resize(rows, axis=0)
        f["anomalies"].resize(kept_anomalies, axis=0)
        f.flush()

    # --- state ----------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return len(self.f["images"])

    def done(self) -> list[tuple[str, str]]:
        """(subject, session) of the sessions already whole in the file, in order."""
        return [(text(r["subject"]), text(r["session"])) for r in self.f["sessions"][:]]

    # --- writing --------------------------------------------------------------------------
    def begin_session(self, subject: str, session: str, label_file: str = "", label_sha256: str = "") -> None:
        if self._current is not None:
            raise StoreError(f"{self.partial}: session {self._current[:2]} was not ended")
        self._current = (subject, session, label_file, label_sha256)
        self._digest = hashlib.sha256()
        self._start = self.rows
        self._anomalies: list[Anomaly] = []

    def append(self, rows: FrameRows) -> None:
        """Append frames of the current session (a session may come in several parts)."""
        if self._current is None:
            raise StoreError(f"{self.partial}: append() outside begin_session()/end_session()")
        n, start = len(rows), self.rows
        stop = start + n
        f = self.f
        subject, session = self._current[:2]
        columns = {"labels": rows.labels, "landmarks": rows.landmarks, "matrix": rows.matrix,
                   "face": rows.face, "landmark_origin": rows.landmark_origin, "frame": rows.frame,
                   "subject": [subject] * n, "session": [session] * n, "split": rows.split}
        if self.settings.with_intensities:
            columns["intensities"] = rows.intensities
        for name, values in columns.items():
            ds = f[name]
            ds.resize(stop, axis=0)
            ds[start:stop] = np.asarray(values, dtype=object) if ds.dtype.kind == "O" else values
        images = f["images"]
        images.resize(stop, axis=0)
        if self.settings.image_encoding == "jpeg":
            block = np.empty(n, dtype=object)
            for i, row in enumerate(rows.images):  # one by one: numpy would stack equal-length rows
                block[i] = row
            # write_direct: slice assignment makes equal-length rows one 2-D array h5py refuses
            images.write_direct(block, np.s_[:], np.s_[start:stop])
        else:
            images[start:stop] = np.stack(rows.images)
        for row in rows.images:
            b = np.ascontiguousarray(row, dtype=np.uint8).tobytes()
            self._digest.update(len(b).to_bytes(8, "little"))
            self._digest.update(b)
        self._anomalies.extend(rows.anomalies)

    def end_session(self, anomalies: list[Anomaly] = ()) -> None:
        """Record the current session as whole (rows, anomalies, then its `sessions` row) and flush.

        `anomalies` are added to those that came with the appended rows."""
        subject, session, label_file, label_sha = self._current
        self._anomalies.extend(anomalies)
        a = self.f["anomalies"]
        a_stop = len(a) + len(self._anomalies)
        if self._anomalies:
            a.resize(a_stop, axis=0)
            a[a_stop - len(self._anomalies):] = anomaly_rows(self._anomalies)
        s = self.f["sessions"]
        s.resize(len(s) + 1, axis=0)
        s[-1] = (subject, session, self._start, self.rows, self._digest.hexdigest().encode(),
                 label_file, label_sha.encode(), a_stop)
        self.f.flush()
        self._current = None

    def finish(self, *, source: dict, anomalies: list[Anomaly] = ()) -> Path:
        """Add the reader's anomalies and provenance, mark complete, rename to the final path."""
        if self._current is not None:
            raise StoreError(f"{self.partial}: session {self._current[:2]} was not ended")
        f = self.f
        if anomalies:
            a = f["anomalies"]
            n = len(a)
            a.resize(n + len(anomalies), axis=0)
            a[n:] = anomaly_rows(anomalies)
        f.attrs["source"] = json.dumps(source, sort_keys=True, default=str)
        f.attrs["austack_version"] = __version__
        f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        f.attrs["complete"] = True  # last: a file without it is never taken for a finished store
        f.close()
        os.replace(self.partial, self.path)
        return self.path

    def close(self) -> None:
        """Close without finishing: the partial file stays, resumable."""
        if getattr(self, "f", None) is not None and self.f.id.valid:
            self.f.close()

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def anomaly_rows(anomalies) -> np.ndarray:
    out = np.empty(len(anomalies), dtype=ANOMALY_DTYPE)
    for i, a in enumerate(anomalies):
        out[i] = (a.kind, a.path, a.detail, a.count)
    return out
