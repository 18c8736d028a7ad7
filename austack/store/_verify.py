"""`verify`: check a store against schema 1 and against itself, recomputing the checksums."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import StoreError
from ._codec import decode_image
from ._schema import ANOMALY_DTYPE, REQUIRED_ATTRS, SCHEMA_VERSION, SESSION_DTYPE, StoreSettings, frame_columns, text

IMAGE_BLOCK = 512  # rows read at once while hashing


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


def _check_schema(f: h5py.File, r: VerifyReport) -> StoreSettings | None:
    missing = [a for a in REQUIRED_ATTRS if a not in f.attrs]
    if missing:
        r.problems.append(f"root attributes missing: {', '.join(missing)}")
        return None
    if f.attrs["schema_version"] != SCHEMA_VERSION:
        r.problems.append(f"schema_version is {f.attrs['schema_version']!r}, expected {SCHEMA_VERSION}")
        return None
    if not f.attrs["complete"]:
        r.problems.append("complete is False: an interrupted run; rerun `austack prepare` with --resume")
    s = StoreSettings.from_attrs(f.attrs)
    n = len(f["images"]) if "images" in f else 0
    expect = {name: (np.dtype(dt), (n, *shape)) for name, (dt, shape) in
              frame_columns(len(s.aus), s.with_intensities).items()}
    expect["images"] = ((np.dtype(np.uint8), (n, s.size, s.size, 3)) if s.image_encoding == "raw"
                        else (h5py.vlen_dtype(np.uint8), (n,)))
    expect["sessions"] = (SESSION_DTYPE, None)
    expect["anomalies"] = (ANOMALY_DTYPE, None)
    bad = []
    for name, (dtype, shape) in expect.items():
        if name not in f:
            bad.append(f"dataset {name!r} is missing")
        elif shape is not None and f[name].shape != shape:
            bad.append(f"{name} has shape {f[name].shape}, expected {shape}")
        elif f[name].dtype != dtype and not (dtype.kind == "O" and f[name].dtype.kind == "O"):
            bad.append(f"{name} has dtype {f[name].dtype}, expected {dtype}")
    r.problems += bad
    if not bad:
        r.checked.append(f"schema {SCHEMA_VERSION}: attributes and {len(expect)} datasets of {n} rows")
    return None if bad else s


def _check_sessions(f: h5py.File, r: VerifyReport) -> np.ndarray:
    s = f["sessions"][:]
    subj, sess = f["subject"].asstr()[:], f["session"].asstr()[:]
    frame = f["frame"][:]
    n, before = len(frame), len(r.problems)
    keys = list(zip(map(text, s["subject"]), map(text, s["session"])))
    seen: set = set()
    expected_start = 0
    for i, (key, start, stop) in enumerate(zip(keys, s["start"], s["stop"])):
        where = f"session {key[0]}/{key[1]} (rows {start}:{stop})"
        if key in seen:
            r.problems.append(f"{where} appears twice in the sessions table")
        seen.add(key)
        if start != expected_start or stop < start:
            r.problems.append(f"{where} does not follow row {expected_start}: sessions must be contiguous")
        expected_start = stop
        if (subj[start:stop] != key[0]).any() or (sess[start:stop] != key[1]).any():
            r.problems.append(f"{where}: subject/session columns disagree with the sessions table")
        fr = frame[start:stop]
        values, counts = np.unique(fr, return_counts=True)
        dup = values[counts > 1]
        if len(dup):
            r.problems.append(f"{where}: duplicate frame(s) {', '.join(map(str, dup[:10]))}")
        elif (np.diff(fr) < 0).any():
            r.problems.append(f"{where}: frames are not in ascending order")
    if expected_start != n:
        r.problems.append(f"sessions cover rows 0:{expected_start} but the store has {n} rows "
                          f"({'missing' if expected_start < n else 'extra'} rows)")
    if len(r.problems) == before:
        r.checked.append(f"{len(s)} sessions: contiguous, unique, frames unique and ascending")
    return s


def _check_values(f: h5py.File, r: VerifyReport, settings: StoreSettings) -> None:
    before = len(r.problems)

    def outside(name: str, lo: int, hi: int) -> None:
        v = f[name][:]
        bad = np.flatnonzero(((v < lo) | (v > hi)).reshape(len(v), -1).any(1))
        if len(bad):
            r.problems.append(f"{name} outside {lo}..{hi} in {len(bad)} rows (first: row {bad[0]})")

    outside("labels", -1, 1)
    if settings.with_intensities:
        outside("intensities", -1, 5)
    outside("face", 0, 1)
    outside("landmark_origin", 0, 2)
    face = f["face"][:].astype(bool)
    no_points = np.isnan(f["landmarks"][:]).reshape(len(face), -1).any(1)
    wrong = np.flatnonzero(face == no_points)
    if len(wrong):
        r.problems.append(f"landmarks must be NaN exactly where face is 0; {len(wrong)} rows disagree "
                          f"(first: row {wrong[0]})")
    if len(r.problems) == before:
        r.checked.append("labels, intensities, face, landmark_origin in range; landmarks NaN iff no face")


def _check_images(f: h5py.File, r: VerifyReport, sessions: np.ndarray, settings: StoreSettings) -> None:
    images, before = f["images"], len(r.problems)
    for row in sessions:
        start, stop = int(row["start"]), int(row["stop"])
        h = hashlib.sha256()
        for a in range(start, stop, IMAGE_BLOCK):
            for img in images[a:min(stop, a + IMAGE_BLOCK)]:
                b = np.ascontiguousarray(img, dtype=np.uint8).tobytes()
                h.update(len(b).to_bytes(8, "little"))
                h.update(b)
        where = f"session {text(row['subject'])}/{text(row['session'])} (rows {start}:{stop})"
        if h.hexdigest() != row["sha256"].decode():
            r.problems.append(f"{where}: image checksum differs from the one written; the file is damaged")
        elif stop > start:
            try:
                img = decode_image(images[start], settings.image_encoding, where=where)
                if img.shape != (settings.size, settings.size, 3):
                    r.problems.append(f"{where}: first image has shape {img.shape}, expected "
                                      f"{(settings.size, settings.size, 3)}")
            except StoreError as e:
                r.problems.append(str(e))
    if len(r.problems) == before:
        r.checked.append(f"image sha256 of all {len(sessions)} sessions recomputed and equal")


def verify(path: str | os.PathLike) -> VerifyReport:
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
        if settings is None:
            return report
        report.frames = len(f["images"])
        sessions = _check_sessions(f, report)
        report.sessions = len(sessions)
        _check_values(f, report, settings)
        _check_images(f, report, sessions, settings)
    return report
