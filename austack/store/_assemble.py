"""The finished store, written in one pass from the durable parts (`_parts`).

The HDF5 file is built under `OUT.h5.partial/` and renamed over `OUT.h5` only when whole, so
a kill during this step loses nothing but the step. The same parts always give the same
bytes: nothing in the file depends on the time, the worker count or how often the run was
resumed.
"""
from __future__ import annotations

import errno
import json
import os
import re
import sys
from pathlib import Path
from typing import Iterable, Iterator

import h5py
import numpy as np

from ..errors import StoreError
from ._digest import ColumnHasher, digest_columns, store_identity_of
from ._parts import PartDir, anomalies_of, check_room, reserve_room
from ._schema import (ANOMALY_DTYPE, DIGESTS, JPEG_CHUNK_ROWS, META_CHUNK_ROWS, SCHEMA_VERSION, SESSION_DTYPE,
                      StoreSettings, frame_columns)

HDF5_SLACK = 256 << 10   # the final file's tables and metadata, beyond the parts' bytes
VLEN_ROW = 16            # bytes of a variable-length row's descriptor (and about its heap entry)


def padding_bytes(s: StoreSettings, rows: int) -> int:
    """What the final file takes beyond its rows' own bytes (an upper bound): the frame
    columns are written in whole chunks of META_CHUNK_ROWS rows, variable-length rows
    carry a descriptor, and the tables and metadata need a little room."""
    chunks = -(-rows // META_CHUNK_ROWS) * META_CHUNK_ROWS
    total = 2 * VLEN_ROW * rows + HDF5_SLACK   # JPEG rows: descriptor and heap entry
    for dtype, shape in frame_columns(len(s.aus), s.with_intensities).values():
        item = VLEN_ROW if np.dtype(dtype).kind == "O" else np.dtype(dtype).itemsize
        total += chunks * item * int(np.prod(shape, dtype=np.int64))
    return total


def _create(f: h5py.File, s: StoreSettings) -> None:
    if s.image_encoding == "jpeg":
        f.create_dataset("images", (0,), maxshape=(None,), dtype=h5py.vlen_dtype(np.uint8),
                         chunks=(JPEG_CHUNK_ROWS,))
    else:
        f.create_dataset("images", (0, s.size, s.size, 3), maxshape=(None, s.size, s.size, 3),
                         dtype=np.uint8, chunks=(1, s.size, s.size, 3))
    for name, (dtype, shape) in frame_columns(len(s.aus), s.with_intensities).items():
        f.create_dataset(name, (0, *shape), maxshape=(None, *shape), dtype=dtype, chunks=(META_CHUNK_ROWS, *shape))


def _image_rows(part: dict, s: StoreSettings) -> list[np.ndarray]:
    blob, offsets = part["images"], part["offsets"]
    rows = [blob[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    return rows if s.image_encoding == "jpeg" else [r.reshape(s.size, s.size, 3) for r in rows]


def _append(f: h5py.File, s: StoreSettings, part: dict, subject: str, session: str, hasher: ColumnHasher) -> int:
    """Append one chunk's rows to every column; returns the number of rows."""
    images = _image_rows(part, s)
    n = len(images)
    start, stop = len(f["images"]), len(f["images"]) + n
    columns = {name: part[name] for name in frame_columns(len(s.aus), s.with_intensities)
               if name not in ("subject", "session", "split")}
    columns.update(subject=[subject] * n, session=[session] * n, split=part["split"].tolist())
    for name, values in columns.items():
        ds = f[name]
        values = np.asarray(values, dtype=object) if ds.dtype.kind == "O" else np.asarray(values, ds.dtype)
        ds.resize(stop, axis=0)
        ds[start:stop] = values
        hasher.update(name, values)  # as stored, so that `verify` recomputes the same digest
    ds = f["images"]
    ds.resize(stop, axis=0)
    if s.image_encoding == "jpeg":
        block = np.empty(n, dtype=object)
        for i, row in enumerate(images):  # one by one: numpy would stack equal-length rows into 2-D
            block[i] = row
        if n:
            ds.write_direct(block, np.s_[:], np.s_[start:stop])
    elif n:
        ds[start:stop] = np.stack(images)
    hasher.update("images", images)
    return n


def part_chunks(parts: PartDir, index: int, marker: dict) -> Iterator[dict]:
    """The chunk parts of session `index` of a partial folder, each checked against its key."""
    for k, key in enumerate(marker["chunks"]):
        part = parts.read_chunk(index, k)
        if json.loads(str(part["meta"]))["key"] != key:
            parts.chunk_path(index, k).unlink(missing_ok=True)
            raise StoreError(f"{parts.chunk_path(index, k)} belongs to another run; it was removed: rerun "
                             "`austack prepare` with --resume", path=parts.chunk_path(index, k))
        yield part


def _session(f, s: StoreSettings, chunks: Iterable[dict], marker: dict, anomalies: list,
             check=lambda: None) -> tuple:
    """Append one session's chunks (part dicts, in order); returns its `sessions` row and its
    column digests. The session's anomalies are its chunks' (in `meta`), then the marker's."""
    start = len(f["images"])
    hasher = ColumnHasher(digest_columns(s.with_intensities))
    for part in chunks:
        _append(f, s, part, marker["subject"], marker["session"], hasher)
        check()
        anomalies += anomalies_of(json.loads(str(part["meta"]))["anomalies"])
    anomalies += anomalies_of(marker["anomalies"])
    digests = hasher.hexdigests()
    row = (marker["subject"], marker["session"], start, len(f["images"]), digests[0].encode(),
           marker["label_file"], marker["label_sha256"].encode(), len(anomalies))
    return row, digests


def _table(f: h5py.File, name: str, dtype, rows: list) -> None:
    data = np.empty(len(rows), dtype=dtype)
    for i, r in enumerate(rows):
        data[i] = r
    f.create_dataset(name, data=data, maxshape=(None,), chunks=(256,))


def assemble(parts: PartDir, markers: list[dict], target: Path, attrs: dict, reader_anomalies) -> str:
    """Write the store at `target` from the parts of `markers` (sessions 0..n-1); returns its
    identity. `attrs` are the root attributes other than the schema's own."""
    sizes = [parts.chunk_path(i, k).stat().st_size for i, m in enumerate(markers) for k in range(len(m["chunks"]))
             if parts.chunk_path(i, k).is_file()]
    need = sum(sizes) + padding_bytes(parts.settings, sum(m["rows"] for m in markers))
    check_room(target.parent, need)
    sessions = ((marker, part_chunks(parts, i, marker)) for i, marker in enumerate(markers))
    return assemble_sessions(parts.settings, sessions, target, attrs, reader_anomalies, reserve=need)


def assemble_sessions(s: StoreSettings, sessions: Iterable[tuple[dict, Iterable[dict]]], target: Path, attrs: dict,
                      reader_anomalies, reserve: int = 0) -> str:
    """Write the store at `target` from (session marker, its chunk part dicts) in order; the
    same parts give the same bytes, wherever they were read from (a partial folder, shards).
    `reserve`: bytes of disk held for the file before anything is written (`reserve_room`)."""
    failed: list[BaseException] = []

    def check() -> None:   # a write error HDF5 met while freeing an object, which Python only prints
        if failed:
            code = _errno_of(failed[0])
            raise OSError(code or errno.EIO, os.strerror(code or errno.EIO))

    def record(u) -> None:   # HDF5's own write failures are kept for check(); anything else as before
        (failed.append(u.exc_value) if _errno_of(u.exc_value) is not None else hook(u))

    hook, sys.unraisablehook = sys.unraisablehook, record
    try:
        f = h5py.File(target, "w")
        try:
            reserve_room(target, reserve)   # after HDF5's create: it truncates the file it opens
            identity = _write(f, s, sessions, attrs, reader_anomalies, check)
            f.close()   # the last metadata is flushed here, so a full disk may show only now
            check()
        except BaseException as e:
            _abandon(f, target)
            code = _errno_of(e)
            if code is not None and not isinstance(e, OSError):
                raise OSError(code, os.strerror(code)) from None
            raise
    finally:
        sys.unraisablehook = hook
    return identity


def _write(f: h5py.File, s: StoreSettings, sessions, attrs: dict, reader_anomalies, check) -> str:
    anomalies, rows, digests, markers = [], [], [], []
    _create(f, s)
    for marker, chunks in sessions:
        row, d = _session(f, s, chunks, marker, anomalies, check)
        rows.append(row)
        digests.append(d)
        markers.append(marker)
    anomalies += list(reader_anomalies)
    _table(f, "sessions", SESSION_DTYPE, rows)
    _table(f, "anomalies", ANOMALY_DTYPE, [(a.kind, a.path, a.detail, a.count) for a in anomalies])
    columns = list(digest_columns(s.with_intensities))
    f.create_dataset(DIGESTS, data=np.array(digests, dtype="S64").reshape(len(digests), len(columns)))
    f[DIGESTS].attrs["columns"] = json.dumps(columns)
    identity = store_identity_of(s, [(m["subject"], m["session"]) for m in markers], columns, digests)
    f.attrs["schema_version"] = SCHEMA_VERSION
    for k, v in {**s.attrs(), **attrs, "identity": identity}.items():
        f.attrs[k] = v
    f.attrs["complete"] = True  # last: a file without it is never taken for a finished store
    return identity


def _abandon(f: h5py.File, target: Path) -> None:
    """Close a store whose writing failed without HDF5 failing again: on a full disk, closing
    flushes buffers that cannot be written either, and h5py then reports (or crashes on) every
    object it frees. Emptying the file first gives the flush room; the file is removed after."""
    try:
        os.truncate(target, 0)
    except OSError:
        pass
    try:
        f.close()
    except Exception:
        pass
    target.unlink(missing_ok=True)


def _errno_of(e: BaseException) -> int | None:
    """HDF5's write failures reach Python as several kinds (OSError, RuntimeError, ValueError);
    the errno in their text says why."""
    found = re.search(r"errno = (\d+)", str(e)) if isinstance(e, (OSError, RuntimeError, ValueError)) else None
    return int(found.group(1)) if found else None
