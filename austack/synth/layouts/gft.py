"""Writes synthetic sessions in GFT's ASSUMED default layout (see `austack.datasets.gft`).

`videos/<ID>.avi` (MJPG) and `AU_OCC/<ID>.csv` with header `frame,AU1,...` (the ten protocol
AUs plus AU17, a column the reader must ignore), values 0/1 and a few 9 (unknown, at least one
per file), frames 1-based.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...protocols import load_protocol
from .base import ALL_AUS, LayoutWriter, SessionTruth, SynthSession, Truth, register_layout
from .disfa import write_video

COLUMN_AUS = (1, 2, 4, 6, 10, 12, 14, 15, 17, 23, 24)
UNKNOWN = 9
UNKNOWN_RATE = 0.02
SESSION = "1"
SEATS = "ABC"


@register_layout("gft")
class GftLayout(LayoutWriter):
    layout = "gft"
    protocol = "gft-official"

    def subject_ids(self, n: int, rng: np.random.Generator) -> list[str]:
        """Alternately a test participant of the official split and a training one."""
        test = list(load_protocol(self.protocol).parts["test"])
        test_groups = {t[:3] for t in test}
        train = [f"{g:03d}{s}" for g in range(1, 33) if f"{g:03d}" not in test_groups for s in SEATS]
        test, train = list(rng.permutation(test)), list(rng.permutation(train))
        order = [pool[i] for i in range(max(len(test), len(train))) for pool in (test, train) if i < len(pool)]
        return sorted(str(s) for s in order[:n])

    def session_ids(self, subject: str, n: int) -> list[str]:
        return [SESSION]     # one recording per participant

    def write(self, dest: Path, sessions: list[SynthSession], rng: np.random.Generator) -> Truth:
        proto = load_protocol(self.protocol)
        dest = Path(dest)
        (dest / "AU_OCC").mkdir(parents=True, exist_ok=True)
        truths = []
        for s in sorted(sessions, key=lambda s: s.subject):
            occurrence = s.written[:, [ALL_AUS.index(a) for a in COLUMN_AUS]] >= proto.label.positive_min
            codes = np.where(rng.random(occurrence.shape) < UNKNOWN_RATE, UNKNOWN, occurrence.astype(int))
            codes[rng.integers(len(codes)), rng.integers(len(COLUMN_AUS))] = UNKNOWN   # at least one
            header = "frame," + ",".join(f"AU{a}" for a in COLUMN_AUS)
            rows = [f"{f + 1}," + ",".join(map(str, row)) for f, row in enumerate(codes)]
            (dest / "AU_OCC" / f"{s.subject}.csv").write_text("\n".join([header, *rows]) + "\n")
            write_video(dest / "videos" / f"{s.subject}.avi", s.frames())
            labels, _ = proto.label.encode(codes[:, [COLUMN_AUS.index(a) for a in proto.aus]])
            truths.append(SessionTruth(s.subject, SESSION, list(range(1, s.n_frames + 1)), labels))
        return Truth(truths, [])
