"""A tiny synthetic DISFA store (disfa-3fold@v1), the cross-dataset target of the tests.

Frames carry DISFA's 0-5 intensities; the labels are those intensities through the protocol's
own label rule (intensity >= 2), as `austack prepare` stores them. An active AU that BP4D also
labels is drawn as the same grating `conftest.write_tiny_store` draws for it, so a detector
trained on the tiny BP4D store sees the same patterns here; DISFA's other AUs (9, 25, 26) are
drawn as no pattern (they are never scored across the two).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from austack.faces.align import alignment_params
from austack.protocols import load_protocol
from austack.store import FrameRows, StoreSettings, StoreWriter, encode_image
from conftest import PROTOCOL as BP4D_PROTOCOL
from conftest import _grating

DISFA_PROTOCOL = "disfa-3fold@v1"


def write_tiny_disfa_store(path: str | Path, *, per_subject: int = 16, size: int = 48, per_part: int = 2,
                           seed: int = 1, protocol: str = DISFA_PROTOCOL) -> Path:
    """`protocol`: a protocol id, or a YAML file (a DISFA protocol of one's own, kept in the
    store's provenance as `austack prepare --protocol FILE` does)."""
    proto, bp4d = load_protocol(protocol), load_protocol(BP4D_PROTOCOL)
    rng = np.random.default_rng(seed)
    settings = StoreSettings(dataset=proto.dataset, aus=proto.aus, protocol=proto.id, protocol_hash=proto.hash,
                             alignment=alignment_params(size, 2.9), landmark_source="shipped", image_encoding="raw",
                             with_intensities=True)
    writer = StoreWriter(path, settings, force=True)
    subjects = [s for part in sorted(proto.parts) for s in proto.parts[part][:per_part]]
    for s in subjects:
        intensity = np.where(rng.random((per_subject, len(proto.aus))) < 0.4,
                             rng.integers(1, 6, (per_subject, len(proto.aus))), 0).astype(np.int8)
        labels, bad = proto.label.encode(intensity)
        assert not bad.any()
        images = []
        for y in labels:
            img = 128 + 12 * rng.standard_normal((size, size, 3)).astype(np.float32)
            for a in (a for a, on in zip(proto.aus, y) if on == 1 and a in bp4d.aus):
                img += 45 * _grating(bp4d.aus.index(a), size, rng.uniform(0, 2 * np.pi))[:, :, None]
            images.append(encode_image(np.clip(img, 0, 255).astype(np.uint8), "raw"))
        n = per_subject
        writer.begin_session(s, "LeftVideo")
        writer.append(FrameRows(images=images, labels=labels, intensities=intensity,
                                landmarks=np.full((n, 49, 2), size / 2, np.float32),
                                matrix=np.tile(np.eye(2, 3, dtype=np.float32), (n, 1, 1)),
                                face=np.ones(n, np.uint8), landmark_origin=np.ones(n, np.uint8),
                                frame=np.arange(n, dtype=np.int32), split=[""] * n))
        writer.end_session()
    source = {"root": "tests/_disfa_store.py"}
    if protocol.endswith(".yaml"):
        source["protocol_file"] = str(protocol)
    writer.finish(source=source)
    return Path(path)
