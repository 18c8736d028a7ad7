"""Shared fixtures: tiny prepared stores (docs/store-schema.md, schema 1) written in a blink.

`write_tiny_store` draws BP4D-protocol subjects (two from each part, so every fold of
bp4d-3fold@v1 has training, validation and test subjects) and renders each frame as gray noise
plus one grating per active AU. AU k has its own period and orientation (horizontal or
vertical stripes, so a horizontal flip keeps it), so the labels can be learnt from the pixels
by a tiny CNN under crops and flips. About 2% of labels are unknown (-1).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pytest

from austack.protocols import load_protocol

PROTOCOL = "bp4d-3fold@v1"
PERIODS = (4, 6, 8, 11, 16, 22)          # pixels; with 2 orientations: 12 distinct patterns


def _grating(k: int, size: int, phase: float) -> np.ndarray:
    period, vertical = PERIODS[k % len(PERIODS)], k >= len(PERIODS)
    t = np.arange(size, dtype=np.float32)
    wave = np.sin(2 * np.pi * t / period + phase)
    return np.tile(wave[None, :], (size, 1)) if vertical else np.tile(wave[:, None], (1, size))


def write_tiny_store(path: str | Path, *, per_subject: int = 24, size: int = 48, per_part: int = 2,
                     seed: int = 0, invert_subjects: tuple[str, ...] = ()) -> Path:
    """Write a complete raw-encoded store at `path` and return it.

    `invert_subjects`: subjects whose labels are written inverted (1 <-> 0) while their images
    stay as rendered, to check that a split's labels do not influence another split's results.
    """
    path = Path(path)
    proto = load_protocol(PROTOCOL)
    n_au = len(proto.aus)
    rng = np.random.default_rng(seed)
    subjects = [s for part in sorted(proto.parts) for s in proto.parts[part][:per_part]]
    rates = rng.uniform(0.25, 0.6, size=n_au)
    images, labels, subj = [], [], []
    for s in subjects:
        y = (rng.random((per_subject, n_au)) < rates).astype(np.int8)
        for img_labels in y:
            img = 128 + 12 * rng.standard_normal((size, size, 3)).astype(np.float32)
            for k in np.flatnonzero(img_labels):
                img += 45 * _grating(int(k), size, rng.uniform(0, 2 * np.pi))[:, :, None]
            images.append(np.clip(img, 0, 255).astype(np.uint8))
        y = np.where(rng.random(y.shape) < 0.02, -1, y).astype(np.int8)
        if s in invert_subjects:
            y = np.where(y >= 0, 1 - y, y).astype(np.int8)
        labels.append(y)
        subj += [s] * per_subject
    images, labels = np.stack(images), np.concatenate(labels)
    n = len(images)
    str_dt = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(1, size, size, 3))
        f.create_dataset("labels", data=labels)
        f.create_dataset("landmarks", data=np.full((n, 49, 2), size / 2, np.float32))
        f.create_dataset("matrix", data=np.tile(np.eye(2, 3, dtype=np.float32), (n, 1, 1)))
        f.create_dataset("face", data=np.ones(n, np.uint8))
        f.create_dataset("landmark_origin", data=np.ones(n, np.uint8))
        f.create_dataset("subject", data=np.array(subj, dtype=object), dtype=str_dt)
        f.create_dataset("session", data=np.array(["T1"] * n, dtype=object), dtype=str_dt)
        f.create_dataset("frame", data=np.tile(np.arange(per_subject, dtype=np.int32), len(subjects)))
        f.create_dataset("split", data=np.array([""] * n, dtype=object), dtype=str_dt)
        sess_dt = np.dtype([("subject", str_dt), ("session", str_dt), ("start", np.int64),
                            ("stop", np.int64), ("sha256", "S64")])
        sessions = []
        for i, s in enumerate(subjects):
            a, b = i * per_subject, (i + 1) * per_subject
            sessions.append((s, "T1", a, b, hashlib.sha256(images[a:b].tobytes()).hexdigest().encode()))
        f.create_dataset("sessions", data=np.array(sessions, dtype=sess_dt))
        f.attrs.update({
            "schema_version": 1, "dataset": proto.dataset, "aus": np.asarray(proto.aus, np.int64),
            "protocol": proto.id, "protocol_hash": proto.hash,
            "alignment": json.dumps({"method": "similarity-49", "size": size, "box_enlarge": 2.9,
                                     "border": 128, "interpolation": "bilinear"}),
            "landmark_source": "shipped", "image_encoding": "raw", "austack_version": "test",
            "source": json.dumps({"root": "synthetic gratings (tests/conftest.py)"}),
            "anomalies": "[]", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "complete": True,
        })
    return path


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    """A 6-subject, 144-frame, 48 px store on bp4d-3fold@v1 with learnable labels (read-only)."""
    return write_tiny_store(tmp_path_factory.mktemp("tiny_store") / "tiny.h5")
