"""`verify`: check a store against its schema and against itself, recomputing the digests.

`verify` reads everything (images included); `check_store` is the cheap check a training run
does first: schema, sessions, value ranges, the digests of every column but the images, and
the identity, raising `StoreError` on the first problems.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import StoreError
from ._codec import decode_image
from ._digest import ColumnHasher, store_identity_of
from ._shards import SHARD_FIX, SHARDS, shard_problems
from ._schema import (ANOMALY_DTYPE, DIGESTS, READABLE_SCHEMAS, REQUIRED_ATTRS, SESSION_DTYPE, StoreSettings,
                      frame_columns, text)

IMAGE_BLOCK = 512  # rows read at once while hashing
REQUIRED_V1 = ("schema_version", "complete", "dataset", "aus", "protocol", "protocol_hash", "alignment",
               "landmark_source", "image_encoding", "austack_version", "source")
LANDMARK_MARGIN = 1.0  # aligned landmarks may lie this many image sides outside the image


@dataclass
class VerifyReport:
    path: Path
    frames: int = 0
    sessions: int = 0
    checked: list[str] = field(default_factory=list)    # what was checked and passed
    problems: list[str] = field(default_factory=list)   # what failed, each naming where

    @property
    def ok(self) -> bool:
        return not self.problems


def _expected(f: h5py.File, s: StoreSettings, n: int, version: int) -> dict:
    expect = {name: (np.dtype(dt), (n, *shape)) for name, (dt, shape) in
              frame_columns(len(s.aus), s.with_intensities).items()}
    expect["images"] = ((np.dtype(np.uint8), (n, s.size, s.size, 3)) if s.image_encoding == "raw"
                        else (h5py.vlen_dtype(np.uint8), (n,)))
    expect["sessions"] = (SESSION_DTYPE, None)
    expect["anomalies"] = (ANOMALY_DTYPE, None)
    if version >= 2:
        expect[DIGESTS] = (np.dtype("S64"), None)
    return expect


def _check_schema(f: h5py.File, r: VerifyReport) -> StoreSettings | None:
    version = f.attrs.get("schema_version")
    if version not in READABLE_SCHEMAS:
        r.problems.append(f"schema_version is {version!r}, expected one of {READABLE_SCHEMAS}")
        return None
    missing = [a for a in (REQUIRED_ATTRS if version >= 2 else REQUIRED_V1) if a not in f.attrs]
    if missing:
        r.problems.append(f"root attributes missing: {', '.join(missing)}")
        return None
    if not f.attrs["complete"]:
        r.problems.append("complete is False: an interrupted run; rerun `austack prepare` with --resume")
    s = StoreSettings.from_attrs(f.attrs)
    n = len(f["images"]) if "images" in f else 0
    expect, bad = _expected(f, s, n, version), []
    for name, (dtype, shape) in expect.items():
        if name not in f:
            bad.append(f"dataset {name!r} is missing")
        elif shape is not None and f[name].shape != shape:
            bad.append(f"{name} has shape {f[name].shape}, expected {shape}")
        elif f[name].dtype != dtype and not (dtype.kind == "O" and f[name].dtype.kind == "O"):
            bad.append(f"{name} has dtype {f[name].dtype}, expected {dtype}")
    r.problems += bad
    if not bad:
        r.checked.append(f"schema {version}: attributes and {len(expect)} datasets of {n} rows")
    return None if bad else s


def _where(row) -> str:
    return f"session {text(row['subject'])}/{text(row['session'])} (rows {row['start']}:{row['stop']})"


def _check_sessions(f: h5py.File, r: VerifyReport) -> np.ndarray:
    s = f["sessions"][:]
    subj, sess = f["subject"].asstr()[:], f["session"].asstr()[:]
    frame = f["frame"][:]
    n, before = len(frame), len(r.problems)
    seen: set = set()
    expected_start = 0
    for row in s:
        key, start, stop, where = (text(row["subject"]), text(row["session"])), row["start"], row["stop"], _where(row)
        if key in seen:
            r.problems.append(f"{where} appears twice in the sessions table")
        seen.add(key)
        if start != expected_start or stop < start:
            r.problems.append(f"{where} does not follow row {expected_start}: sessions must be contiguous")
        expected_start = stop
        if (subj[start:stop] != key[0]).any() or (sess[start:stop] != key[1]).any():
            r.problems.append(f"{where}: subject/session columns disagree with the sessions table")
        values, counts = np.unique(frame[start:stop], return_counts=True)
        dup = values[counts > 1]
        if len(dup):
            r.problems.append(f"{where}: duplicate frame(s) {', '.join(map(str, dup[:10]))}")
        elif (np.diff(frame[start:stop]) < 0).any():
            r.problems.append(f"{where}: frames are not in ascending order")
    if expected_start != n:
        r.problems.append(f"sessions cover rows 0:{expected_start} but the store has {n} rows "
                          f"({'missing' if expected_start < n else 'extra'} rows)")
    if len(r.problems) == before:
        r.checked.append(f"{len(s)} sessions: contiguous, unique, frames unique and ascending")
    return s


def _session_of(sessions: np.ndarray, row: int) -> str:
    k = int(np.searchsorted(sessions["stop"], row, side="right"))
    return _where(sessions[k]) if k < len(sessions) else f"row {row} (in no session)"


def _flag(r: VerifyReport, sessions: np.ndarray, bad: np.ndarray, what: str) -> None:
    rows = np.flatnonzero(bad)
    if len(rows):
        r.problems.append(f"{what} in {len(rows)} rows (first: row {rows[0]}, {_session_of(sessions, rows[0])})")


def _check_values(f: h5py.File, r: VerifyReport, settings: StoreSettings, sessions: np.ndarray) -> None:
    before = len(r.problems)

    def outside(name: str, lo: int, hi: int) -> None:
        v = f[name][:]
        _flag(r, sessions, ((v < lo) | (v > hi)).reshape(len(v), -1).any(1), f"{name} outside {lo}..{hi}")

    outside("labels", -1, 1)
    if settings.with_intensities:
        outside("intensities", -1, 5)
    outside("face", 0, 1)
    outside("landmark_origin", 0, 2)
    face = f["face"][:].astype(bool)
    lm = f["landmarks"][:].reshape(len(face), -1)
    _flag(r, sessions, face == np.isnan(lm).any(1), "landmarks must be NaN exactly where face is 0; they are not")
    lo, hi = -LANDMARK_MARGIN * settings.size, (1 + LANDMARK_MARGIN) * settings.size
    with np.errstate(invalid="ignore"):
        far = face & ~((lm >= lo) & (lm <= hi)).all(1)
    _flag(r, sessions, far, f"landmarks not finite or outside {lo:g}..{hi:g} (the aligned image is "
          f"0..{settings.size})")
    matrix = f["matrix"][:].reshape(len(face), -1)
    _flag(r, sessions, face & ~np.isfinite(matrix).all(1), "matrix not finite where face is 1")
    if len(r.problems) == before:
        r.checked.append("labels, intensities, face, landmark_origin in range; landmarks finite and near the "
                         "image where face is 1, NaN where 0")


def _hash_column(f: h5py.File, name: str, start: int, stop: int, hasher: ColumnHasher) -> None:
    ds = f[name]
    view = ds.asstr() if ds.dtype.kind == "O" and name != "images" else ds
    for a in range(start, stop, IMAGE_BLOCK):
        hasher.update(name, view[a:min(stop, a + IMAGE_BLOCK)])


def _check_first_image(f, r: VerifyReport, row, settings: StoreSettings) -> None:
    if row["stop"] <= row["start"]:
        return
    try:
        img = decode_image(f["images"][row["start"]], settings.image_encoding, where=_where(row))
    except StoreError as e:
        r.problems.append(str(e))
        return
    if img.shape != (settings.size, settings.size, 3):
        r.problems.append(f"{_where(row)}: first image has shape {img.shape}, expected "
                          f"{(settings.size, settings.size, 3)}")


def _check_digests(f: h5py.File, r: VerifyReport, sessions: np.ndarray, settings: StoreSettings,
                   images: bool) -> None:
    """Recompute every session's column digests (images only if `images`) and the identity."""
    before = len(r.problems)
    if DIGESTS not in f:   # schema 1: only the image digest was recorded
        columns, recorded = ["images"], sessions["sha256"].reshape(-1, 1)
    else:
        columns, recorded = json.loads(f[DIGESTS].attrs["columns"]), f[DIGESTS][:]
    for i, row in enumerate(sessions):
        todo = [c for c in columns if images or c != "images"]
        hasher = ColumnHasher(todo)
        for name in todo:
            _hash_column(f, name, int(row["start"]), int(row["stop"]), hasher)
        for name, digest in zip(todo, hasher.hexdigests()):
            if digest != recorded[i, columns.index(name)].decode():
                r.problems.append(f"{_where(row)}: column {name!r} checksum (sha256) differs from the one "
                                  "recorded at prepare time; the store was changed or damaged: prepare it again")
        if images:
            _check_first_image(f, r, row, settings)
    _check_identity(f, r, sessions, settings, columns, recorded.astype(str))  # the columns are checked above
    if len(r.problems) == before:
        what = ", ".join(c for c in columns if images or c != "images")
        r.checked.append(f"sha256 of {what} in all {len(sessions)} sessions recomputed and equal")


def _check_identity(f, r: VerifyReport, sessions, settings, columns, digests) -> None:
    if "identity" not in f.attrs:
        r.checked.append("schema 1: no column digests or identity recorded (prepare again for the full check)")
        return
    names = [(text(s["subject"]), text(s["session"])) for s in sessions]
    if store_identity_of(settings, names, columns, digests) != str(f.attrs["identity"]):
        r.problems.append("identity differs from the one recomputed from the settings, sessions and recorded "
                          "digests (one of them was changed); prepare the store again")
    else:
        r.checked.append(f"identity {str(f.attrs['identity'])[:16]}... recomputed and equal")


def _check_shards(f: h5py.File, r: VerifyReport) -> bool:
    """A virtual store's shard files (HDF5 would read a missing one as fill values)."""
    problems = shard_problems(f, r.path)
    r.problems += [f"{p}: {SHARD_FIX}" for p in problems]
    if SHARDS in f and not problems:
        r.checked.append(f"virtual store over {len(f[SHARDS])} shard files: each present, finished, "
                         "and the one it was made over")
    return not problems


def verify(path: str | os.PathLike, *, images: bool = True) -> VerifyReport:
    """Check a store (finished or not) and report every problem found; never raises for content."""
    path = Path(path).expanduser().resolve()
    report = VerifyReport(path)
    if not path.exists():
        raise StoreError(f"store {path} does not exist", path=path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        report.problems.append(f"not a readable HDF5 file: {e}")
        return report
    with f:
        settings = _check_schema(f, report)
        if settings is None or not _check_shards(f, report):
            return report
        report.frames = len(f["images"])
        sessions = _check_sessions(f, report)
        report.sessions = len(sessions)
        _check_values(f, report, settings, sessions)
        _check_digests(f, report, sessions, settings, images)
    return report


def check_store(path: str | os.PathLike) -> None:
    """The cheap check before training: everything `verify` checks but the image bytes.
    Raises StoreError naming the store, the first problems and the fix."""
    report = verify(path, images=False)
    if not report.ok:
        shown = "; ".join(report.problems[:3]) + (f"; and {len(report.problems) - 3} more"
                                                  if len(report.problems) > 3 else "")
        raise StoreError(f"{report.path} failed its check: {shown} (`austack verify` lists all)",
                         path=report.path)
