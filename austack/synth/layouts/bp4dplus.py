"""Synthetic BP4D+ in the raw layout: zipped subjects, 34-AU CSVs, CSV frame f shown by jpg f-1.

Writes `2D+3D/<SUBJ>.zip` (members `<SUBJ>/<TASK>/<n>.jpg`) and
`AUCoding/AU_OCC/<SUBJ>_<TASK>.csv` and returns the `Truth` that
`austack.datasets.bp4dplus.BP4DPlusReader` must read back. What varies, and where:

- subjects come from every part of the austack-defined protocol; sessions are the coded tasks
  T1, T6, T7, T8;
- jpg padding alternates per session (even: 3 digits, odd: 4); session 0 starts at CSV frame 1,
  i.e. jpg 0, the others further in; one extra uncoded jpg follows the last coded frame;
- every third session (1, 4, ...) has a UTF-8 BOM; about half have a run of code 9;
- session 0's zip lacks the jpg of its middle coded frame.
No landmarks ship with BP4D+ in this layout.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ...errors import ConfigError
from ...protocols import load_protocol
from .base import LayoutWriter, SessionTruth, SynthSession, Truth, register_layout
from .bp4d import (SessionPlan, deal_subjects, encode_jpeg, occurrence_codes, plan_sessions, protocol_labels,
                   write_csv)

# The 34 AU columns of a BP4D+ AU_OCC file, in file order.
CSV_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 27, 28, 29, 30, 31, 32,
           33, 34, 35, 36, 37, 38, 39)
CODED_TASKS = ("T1", "T6", "T7", "T8")
FRAME_DIR = "2D+3D"
JPG_OFFSET = -1           # CSV frame f is jpg f-1


@register_layout("bp4d+")
class BP4DPlusLayout(LayoutWriter):
    layout = "bp4d+"
    protocol = "bp4d+-3fold@v1"

    def subject_ids(self, n: int, rng: np.random.Generator) -> list[str]:
        return deal_subjects(load_protocol(self.protocol), n, rng)

    def session_ids(self, subject: str, n: int) -> list[str]:
        if not 0 < n <= len(CODED_TASKS):
            raise ConfigError(f"{self.layout} codes AUs in {len(CODED_TASKS)} tasks; asked for {n}: "
                              f"pass --sessions {len(CODED_TASKS)} or fewer")
        return list(CODED_TASKS[:n])

    def write(self, dest: Path, sessions: list[SynthSession], rng: np.random.Generator) -> Truth:
        dest = Path(dest)
        protocol = load_protocol(self.protocol)
        plans = plan_sessions(sessions, protocol, rng, lambda i: 1 if i == 0 else int(rng.integers(2, 500)),
                              inject=((0, "missing_image"),))
        truths, anomalies = [], []
        for i, (s, plan) in enumerate(zip(sessions, plans)):
            width = 3 if i % 2 == 0 else 4
            skip = plan.frames[len(plan.frames) // 2] if plan.inject == "missing_image" and s.n_frames >= 3 else None
            member = self._write_frames(dest, s, plan.frames, width, skip)
            if skip is not None:
                anomalies.append(("missing_image", f"{FRAME_DIR}/{s.subject}.zip:{member(skip)}"))
            write_csv(dest / "AUCoding" / "AU_OCC" / f"{s.subject}_{s.session}.csv", ["", *map(str, CSV_AUS)],
                      plan.frames, self._csv_codes(s, plan, protocol.aus, protocol.label.positive_min), plan.bom)
            keep = plan.frames != skip
            truths.append(SessionTruth(s.subject, s.session, plan.frames[keep].tolist(),
                                       protocol_labels(plan.codes[keep])))
        return Truth(truths, anomalies)

    def _write_frames(self, dest: Path, s: SynthSession, frames: np.ndarray, width: int, skip: int | None):
        """Append the session's jpgs to the subject's zip; returns CSV frame -> member name."""
        member = lambda frame: f"{s.subject}/{s.session}/{frame + JPG_OFFSET:0{width}d}.jpg"
        archive = dest / FRAME_DIR / f"{s.subject}.zip"
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, "a", compression=zipfile.ZIP_STORED) as z:   # jpgs do not deflate
            jpg = b""
            for frame, (rgb, _) in zip(frames, s.frames()):
                jpg = encode_jpeg(rgb)
                if frame != skip:
                    z.writestr(member(frame), jpg)
            z.writestr(member(frames[-1] + 1), jpg)   # a frame nobody coded: not to be read
        return member

    @staticmethod
    def _csv_codes(s: SynthSession, plan: SessionPlan, aus: tuple[int, ...], positive_min: int) -> np.ndarray:
        """All 34 columns: the plan's codes (with its 9 runs) for the protocol AUs, occurrence for the rest."""
        codes = occurrence_codes(s, CSV_AUS, positive_min)
        for j, au in enumerate(aus):
            codes[:, CSV_AUS.index(au)] = plan.codes[:, j]
        return codes
