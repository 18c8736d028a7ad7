"""Synthetic BP4D in the raw layout, with the irregularities the reader must survive.

Writes `Sequences(2D+3D)/<SUBJ>/<TASK>/<n>.jpg`, `AUCoding/AU_OCC/<SUBJ>_<TASK>.csv` and
`2DFeatures/<SUBJ>_<TASK>.mat` (MATLAB v7.3, `fit/pred`, 49 points, 1-based) and returns the
`Truth` that `austack.datasets.bp4d.BP4DReader` must read back. What varies, and where:

- subjects come from every protocol part (so every fold has test subjects), one of them from
  M009-M018, whose jpg names are padded to 3 digits instead of 4;
- header styles alternate per session (even: legacy `0,...,99`; odd: named `1,1,2,4,...`);
  every third session (1, 4, ...) has a UTF-8 BOM;
- CSV frames start far above 1 (below 1000 for 4-digit names, so 0643.jpg; across 999 for
  3-digit names, so 999.jpg then 1000.jpg); one extra uncoded jpg follows the last coded frame;
- about half the sessions have a run of code 9 (unknown) in one or two AUs;
- session 0 lacks the jpg of its middle coded frame, session 1 its 2DFeatures file, and
  session 2's 2DFeatures file holds a different number of frames than its CSV.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ...faces.align import landmarks_68_to_49
from ...datasets._matlab import write_v73_cells
from ...errors import ConfigError
from ...protocols import Protocol, load_protocol
from .base import ALL_AUS, LayoutWriter, SessionTruth, SynthSession, Truth, register_layout

JPEG_QUALITY = 90
UNKNOWN = 9
LEGACY_COLUMNS = 100          # 0 = frame, N = AU N, 99 = occlusion flag
THREE_DIGIT_SUBJECTS = frozenset(f"M{i:03d}" for i in range(9, 19))
# Injected on purpose, one session each: (session index, anomaly kind).
INJECTED = ((0, "missing_image"), (1, "missing_landmarks"), (2, "count_mismatch"))


def deal_subjects(protocol: Protocol, n: int, rng: np.random.Generator,
                  lead: Callable[[str], bool] = lambda s: False) -> list[str]:
    """`n` subject ids dealt round-robin from the protocol's parts (shuffled), so that every
    fold has test subjects; the first id is one for which `lead` holds, where any does."""
    pools = [list(rng.permutation(members)) for members in protocol.parts.values()]
    total = sum(map(len, pools))
    if not 0 < n <= total:
        raise ConfigError(f"{protocol.dataset} has {total} subjects; asked for {n}: pass --subjects {total} or fewer")
    for i, pool in enumerate(pools):
        leads = [s for s in pool if lead(s)]
        if leads:
            pool.remove(leads[0])
            pool.insert(0, leads[0])
            pools = pools[i:] + pools[:i]   # deal from this part first
            break
    out: list[str] = []
    while len(out) < n:
        for pool in pools:
            if pool and len(out) < n:
                out.append(str(pool.pop(0)))
    return out


def encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"cv2 could not encode a {rgb.shape} frame as JPEG")
    return buf.tobytes()


def occurrence_codes(session: SynthSession, aus, positive_min: int) -> np.ndarray:
    """0/1 occurrence per frame for `aus` from the written intensities; AUs the renderer
    cannot show are 9 (unknown): the generator never claims what the frames do not show."""
    out = np.full((session.n_frames, len(aus)), 9, dtype=np.int64)
    for j, au in enumerate(aus):
        if au in ALL_AUS:
            out[:, j] = session.written[:, ALL_AUS.index(au)] >= positive_min
    return out


def add_unknown_runs(codes: np.ndarray, coded: list[int], rng: np.random.Generator) -> None:
    """In about half the sessions, code 9 over a run of frames in one or two of the `coded` columns."""
    if rng.random() < 0.5 or len(codes) == 0:
        return
    for col in rng.choice(coded, size=min(len(coded), int(rng.integers(1, 3))), replace=False):
        start = int(rng.integers(0, len(codes)))
        codes[start:start + max(1, len(codes) // 4), col] = UNKNOWN


def write_csv(path: Path, header: list[str], frames: np.ndarray, codes: np.ndarray, bom: bool) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows([[int(f), *map(int, row)] for f, row in zip(frames, codes)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8-sig" if bom else "utf-8", newline="")


def protocol_labels(codes: np.ndarray) -> np.ndarray:
    """What the reader must make of 0/1/9 codes."""
    return np.where(codes == UNKNOWN, -1, codes).astype(np.int8)


@dataclass
class SessionPlan:
    """Choices made for one session before anything is written."""

    frames: np.ndarray     # CSV frame numbers, one per rendered frame
    codes: np.ndarray      # (T, len(protocol AUs)) 0/1/9
    header_style: str      # "legacy" or "named"
    bom: bool
    inject: str | None     # anomaly kind injected into this session, if any


def plan_sessions(sessions: list[SynthSession], protocol: Protocol, rng: np.random.Generator,
                  first_frame: Callable[[int], int], inject=INJECTED) -> list[SessionPlan]:
    """Codes, first frame, header style, BOM and injected anomaly of each session."""
    plans = []
    injected = dict(inject)
    for i, s in enumerate(sessions):
        if s.n_frames == 0:
            raise ValueError(f"session {s.subject}/{s.session} has no frames; a coded session needs at least one")
        codes = occurrence_codes(s, protocol.aus, protocol.label.positive_min)
        add_unknown_runs(codes, list(range(len(protocol.aus))), rng)
        start = first_frame(i)
        plans.append(SessionPlan(np.arange(start, start + s.n_frames), codes,
                                 "legacy" if i % 2 == 0 else "named", i % 3 == 1, injected.get(i)))
    return plans


def legacy_or_named(plan: SessionPlan, aus: tuple[int, ...]) -> tuple[list[str], np.ndarray]:
    """The CSV header and cells for the plan's header style."""
    if plan.header_style == "named":    # the re-release: the first cell repeats the first AU number
        return [str(aus[0]), *map(str, aus)], plan.codes
    table = np.full((len(plan.codes), LEGACY_COLUMNS - 1), UNKNOWN, dtype=np.int64)   # uncoded AUs: 9
    for j, au in enumerate(aus):
        table[:, au - 1] = plan.codes[:, j]
    table[:, -1] = 0                    # the occlusion flag
    return [str(c) for c in range(LEGACY_COLUMNS)], table


@register_layout("bp4d")
class BP4DLayout(LayoutWriter):
    layout = "bp4d"
    protocol = "bp4d-3fold@v1"
    frame_dir = "Sequences(2D+3D)"
    tasks = tuple(f"T{i}" for i in range(1, 9))

    def subject_ids(self, n: int, rng: np.random.Generator) -> list[str]:
        return deal_subjects(load_protocol(self.protocol), n, rng, lead=THREE_DIGIT_SUBJECTS.__contains__)

    def session_ids(self, subject: str, n: int) -> list[str]:
        if not 0 < n <= len(self.tasks):
            raise ConfigError(f"{self.layout} has {len(self.tasks)} tasks; asked for {n}: "
                              f"pass --sessions {len(self.tasks)} or fewer")
        return list(self.tasks[:n])

    def write(self, dest: Path, sessions: list[SynthSession], rng: np.random.Generator) -> Truth:
        dest = Path(dest)
        protocol = load_protocol(self.protocol)
        plans = plan_sessions(sessions, protocol, rng, lambda i: self._first_frame(sessions[i], rng))
        truths, anomalies = [], []
        for s, plan in zip(sessions, plans):
            truth, injected = self._write_session(dest, s, plan, protocol.aus)
            truths.append(truth)
            anomalies += injected
        return Truth(truths, anomalies)

    @staticmethod
    def _first_frame(s: SynthSession, rng: np.random.Generator) -> int:
        """Far above 1, below 1000 so 4-digit names show their zero padding (0643.jpg); 3-digit
        subjects' runs cross 999 so their names also grow past the padding (999.jpg, 1000.jpg)."""
        if s.subject in THREE_DIGIT_SUBJECTS:
            return max(2, 1000 - s.n_frames // 2)
        return int(rng.integers(100, max(101, 1000 - s.n_frames)))

    def _write_session(self, dest: Path, s: SynthSession, plan: SessionPlan,
                       aus: tuple[int, ...]) -> tuple[SessionTruth, list]:
        width = 3 if s.subject in THREE_DIGIT_SUBJECTS else 4
        folder = dest / self.frame_dir / s.subject / s.session
        folder.mkdir(parents=True, exist_ok=True)
        skip = plan.frames[len(plan.frames) // 2] if plan.inject == "missing_image" and s.n_frames >= 3 else None
        injected: list[tuple[str, str]] = []
        points, jpg = [], b""
        for frame, (rgb, lm68) in zip(plan.frames, s.frames()):
            jpg = encode_jpeg(rgb)
            if frame != skip:
                (folder / f"{frame:0{width}d}.jpg").write_bytes(jpg)
            points.append(landmarks_68_to_49(lm68).astype(np.float64) + 1.0)   # 0-based -> MATLAB 1-based
        if skip is not None:
            injected.append(("missing_image", f"{self.frame_dir}/{s.subject}/{s.session}/{skip:0{width}d}.jpg"))
        end = plan.frames[-1] + 1
        (folder / f"{end:0{width}d}.jpg").write_bytes(jpg)   # a frame nobody coded: not to be read

        label_file = dest / "AUCoding" / "AU_OCC" / f"{s.subject}_{s.session}.csv"
        header, table = legacy_or_named(plan, aus)
        write_csv(label_file, header, plan.frames, table, plan.bom)

        keep = plan.frames != skip
        frames = plan.frames[keep].tolist()
        mat = f"2DFeatures/{s.subject}_{s.session}.mat"
        landmarks_missing: list[int] = []
        if plan.inject == "missing_landmarks":
            injected.append(("missing_landmarks", mat))
            landmarks_missing = frames
        else:
            if plan.inject == "count_mismatch":
                injected.append(("count_mismatch", mat))
                if len(points) > 2:     # truncated: the last two coded frames lose their landmarks
                    landmarks_missing = [f for f in frames if f > plan.frames[-3]]
                    points = points[:-2]
                else:                   # too short to truncate: one entry too many
                    points = points + points[-1:]
            (dest / mat).parent.mkdir(parents=True, exist_ok=True)
            write_v73_cells(dest / mat, "fit/pred", points)
        truth = SessionTruth(s.subject, s.session, frames, protocol_labels(plan.codes[keep]),
                             landmark_points=None if len(landmarks_missing) == len(frames) else 49,
                             landmarks_missing=landmarks_missing)
        return truth, injected

