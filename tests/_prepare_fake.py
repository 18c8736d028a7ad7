"""A tiny raw dataset and its reader, registered as `test-fake`, for the prepare/store tests.

Frames are the astronaut photo (scikit-image) moved by small known similarity transforms, so
the 68 dlib landmarks found once on the photo, moved the same way, are exact shipped landmarks.
One frame is a blank grey image with no landmarks (no face), one JPEG is cut short.
"""
from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from austack.datasets.base import (READERS, FrameRecord, PixelSource, Reader, SessionRecord, SessionRef,
                                   register_reader)

AUS = (1, 2, 4)
PROTOCOL = """name: test-fake-3fold
version: 1
dataset: test-fake
title: test-only protocol
aus: [1, 2, 4]
label: {kind: occurrence, positive_min: 1, unknown_codes: [9]}
parts: {part1: [S1], part2: [S2], part3: [S3, S4]}
folds:
  - {fold: 1, test: [part3]}
  - {fold: 2, test: [part2]}
  - {fold: 3, test: [part1]}
validation: {fraction: 0.5}
"""


ASTRONAUT_68 = Path(__file__).parent / "data" / "astronaut_68.npy"


@cache
def astronaut_68() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo and its 68 dlib landmarks (0-based), as `detect_68` finds them.

    Stored, so that a machine without dlib (a lent GPU's) can run the tests that only need
    them; `test_align.py` checks the file against dlib wherever dlib is."""
    return data.astronaut(), np.load(ASTRONAUT_68)


def _moved(i: int) -> tuple[np.ndarray, np.ndarray]:
    img, p68 = astronaut_68()
    angle, scale, dx, dy = 3.0 * np.sin(i), 1.0 + 0.03 * np.cos(i), 4.0 * i % 17 - 8, 3.0 * i % 11 - 5
    m = cv2.getRotationMatrix2D((256, 256), angle, scale)
    m[:, 2] += (dx, dy)
    return (cv2.warpAffine(img, m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT),
            (p68 @ m[:, :2].T + m[:, 2]).astype(np.float32))


def write_fake_raw(root: Path, subjects=("S1", "S2", "S3"), sessions=("T1", "T2"), frames: int = 3,
                   seed: int = 0, no_face: bool = True, truncated: bool = True) -> dict:
    """Write the raw layout; returns {(subject, session): {"frames", "labels"}}."""
    rng = np.random.default_rng(seed)
    (root / "protocol").mkdir(parents=True, exist_ok=True)
    (root / "protocol" / "test-fake-3fold@v1.yaml").write_text(PROTOCOL)
    (root / "labels").mkdir(exist_ok=True)
    truth, k = {}, 0
    for subject in subjects:
        for session in sessions:
            folder = root / "frames" / subject / session
            folder.mkdir(parents=True, exist_ok=True)
            numbers = list(range(10, 10 + frames))
            labels = rng.choice([0, 1, 9], size=(frames, len(AUS)), p=[0.5, 0.4, 0.1])
            lms = np.full((frames, 68, 2), np.nan, np.float32)
            for j, n in enumerate(numbers):
                img, p = _moved(k)
                k += 1
                if no_face and (subject, session, j) == (subjects[0], sessions[-1], 1):
                    img = np.full_like(img, 128)
                else:
                    lms[j] = p
                cv2.imwrite(str(folder / f"{n}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            if truncated and (subject, session) == (subjects[-1], sessions[0]):
                path = folder / f"{numbers[-1]}.jpg"
                path.write_bytes(path.read_bytes()[:2000])
            np.save(root / "labels" / f"{subject}_{session}.npy", lms)
            with open(root / "labels" / f"{subject}_{session}.csv", "w", newline="") as fh:
                csv.writer(fh).writerows([[n, *row] for n, row in zip(numbers, labels)])
            truth[(subject, session)] = {"frames": numbers, "labels": np.where(labels == 9, -1, labels)}
    (root / "truth.json").write_text(json.dumps({f"{a}/{b}": v["frames"] for (a, b), v in truth.items()}))
    return truth


class FakeReader(Reader):
    dataset = "test-fake"
    expected = "labels/<SUBJ>_<SESSION>.csv, frames/<SUBJ>/<SESSION>/<n>.jpg"

    @property
    def protocol(self) -> str:  # a YAML file inside the fake root
        return str(self.root / "protocol" / "test-fake-3fold@v1.yaml")

    def verify(self) -> None:
        if not (self.root / "labels").is_dir():
            raise self.not_found(f"{self.root / 'labels'} is missing")

    def sessions(self) -> list[SessionRef]:
        refs = [SessionRef(*p.stem.split("_"), str(p)) for p in (self.root / "labels").glob("*.csv")]
        return sorted(refs, key=lambda r: (r.subject, r.session))

    def read_session(self, ref: SessionRef, anomalies) -> SessionRecord:
        lms = np.load(Path(ref.label_file).with_suffix(".npy"))
        frames = []
        with open(ref.label_file) as fh:
            for j, row in enumerate(csv.reader(fh)):
                n, codes = int(row[0]), np.array([int(v) for v in row[1:]])
                src = PixelSource("image", str(self.root / "frames" / ref.subject / ref.session / f"{n}.jpg"))
                frames.append(FrameRecord(ref.subject, ref.session, n, src,
                                          np.where(codes == 9, -1, codes).astype(np.int8),
                                          landmarks=None if np.isnan(lms[j]).any() else lms[j]))
        return SessionRecord(ref.subject, ref.session, frames, landmark_scheme=68)


if "test-fake" not in READERS:
    register_reader("test-fake")(FakeReader)
