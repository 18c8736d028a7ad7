"""Small stores with real 49-point landmarks for the export and score tests.

Faces are noise; each stored face carries the astronaut photo's landmarks (tests/data),
aligned as `prepare` would and jittered per frame, so the JAA-Net re-alignment has real
geometry to work from. A few frames have no face (NaN landmarks) and a few labels are unknown.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from austack.faces.align import IDX_68_TO_49, alignment_params, similarity_49, transform_points
from austack.protocols import load_protocol
from austack.store import FrameRows, StoreSettings, StoreWriter, encode_image

ASTRONAUT_68 = Path(__file__).parent / "data" / "astronaut_68.npy"


def write_landmark_store(path: Path, protocol: str = "bp4d-3fold@v1", *, per_subject: int = 6, size: int = 40,
                         per_part: int = 1, first_frame: int = 2440, encoding: str = "jpeg", seed: int = 0) -> Path:
    proto = load_protocol(protocol)
    rng = np.random.default_rng(seed)
    p49 = np.load(ASTRONAUT_68)[IDX_68_TO_49]
    aligned = transform_points(p49, similarity_49(p49, size, 2.9))
    settings = StoreSettings(dataset=proto.dataset, aus=proto.aus, protocol=proto.id, protocol_hash=proto.hash,
                             alignment=alignment_params(size, 2.9), landmark_source="shipped", image_encoding=encoding)
    writer = StoreWriter(path, settings, force=True)
    for part in sorted(proto.parts):
        for s in proto.parts[part][:per_part]:
            n = per_subject
            labels = (rng.random((n, len(proto.aus))) < 0.4).astype(np.int8)
            labels[0] = 1                                   # every AU has positives in every subject
            labels[rng.random(labels.shape) < 0.05] = -1
            land = aligned[None] + rng.normal(0, 0.3, (n, 49, 2))
            face = np.ones(n, np.uint8)
            face[-1] = 0                                    # the last frame of each subject: no face
            land[-1] = np.nan
            images = [encode_image(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), encoding) for _ in range(n)]
            writer.begin_session(s, "T1")
            writer.append(FrameRows(images=images, labels=labels, landmarks=land.astype(np.float32),
                                    matrix=np.tile(np.eye(2, 3, dtype=np.float32), (n, 1, 1)), face=face,
                                    landmark_origin=face.copy(), frame=np.arange(first_frame, first_frame + n,
                                                                                 dtype=np.int32),
                                    split=[""] * n))
            writer.end_session()
    writer.finish(source={"root": str(path.parent / "raw-not-here")})
    return path
