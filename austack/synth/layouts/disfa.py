"""Writes synthetic sessions in DISFA's raw layout, with the release's irregularities.

Injected on purpose (and listed in `Truth`):
- SN010, when generated, has label files one line shorter than its video (4844 vs 4845 frames);
- another subject's video holds a few decodable frames beyond its label count;
- some label files start with a UTF-8 BOM, one subject's label files and another's video use
  other letter cases (`SN002_AU1.txt`, `LeftVideoSN002_Comp.avi`);
- landmarks: 66-point MATLAB v5 files with 1-based coordinates; one subject (SN031 when present)
  uses the `l0NNNN_lm.mat` names, and one landmark file is missing (reported as such).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
import scipy.io

from ...errors import AustackError
from ...protocols import load_protocol
from .base import ALL_AUS, LayoutWriter, SessionTruth, SynthSession, Truth, register_layout

LABEL_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)   # every AU the release codes
SHORT_SUBJECT = "SN010"          # one label line short in the release
ALT_LANDMARK_SUBJECT = "SN031"   # uses l0NNNN_lm.mat landmark names in the release
EXTRA_VIDEO_FRAMES = 3
# 68-point iBUG indices kept in DISFA's 66 points (the two inner-mouth corners are dropped).
POINTS_66 = np.array([i for i in range(68) if i not in (60, 64)])
SESSION = "left"
FPS = 20.0


def write_video(path: Path, frames: Iterable[tuple[np.ndarray, np.ndarray]], extra: int = 0) -> list[np.ndarray]:
    """MJPG-in-AVI video of RGB `frames` (then `extra` copies of the last one); cv2 reads it back.

    Returns the 68-point landmarks of the rendered frames, in order.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    writer, last, marks = None, None, []
    for rgb, pts in frames:
        if writer is None:
            h, w = rgb.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
            if not writer.isOpened():
                raise AustackError(f"OpenCV cannot write MJPG video {path}: its FFmpeg backend is "
                                   f"unavailable in this cv2 build", path=path)
        last = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        writer.write(last)
        marks.append(pts)
    for _ in range(extra if last is not None else 0):
        writer.write(last)
    if writer is not None:
        writer.release()
    return marks


@register_layout("disfa")
class DisfaLayout(LayoutWriter):
    layout = "disfa"
    protocol = "disfa-3fold"

    def subject_ids(self, n: int, rng: np.random.Generator) -> list[str]:
        """Subjects taken in turn from the protocol's three parts, so every fold has test subjects;
        SN010 and SN031 come first in their parts so their quirks are generated."""
        parts = []
        for members in load_protocol(self.protocol).parts.values():
            quirky = [s for s in members if s in (SHORT_SUBJECT, ALT_LANDMARK_SUBJECT)]
            rest = [str(s) for s in rng.permutation([s for s in members if s not in quirky])]
            parts.append(quirky + rest)
        order = [p[i] for i in range(max(map(len, parts))) for p in parts if i < len(p)]
        return sorted(order[:n])

    def session_ids(self, subject: str, n: int) -> list[str]:
        return [SESSION]     # DISFA has one recording per subject

    def write(self, dest: Path, sessions: list[SynthSession], rng: np.random.Generator) -> Truth:
        proto = load_protocol(self.protocol)
        dest = Path(dest)
        sessions = sorted(sessions, key=lambda s: s.subject)
        subjects = [s.subject for s in sessions]
        others = [s for s in subjects if s != SHORT_SUBJECT]
        extra_subject = others[0] if others else None
        alt_subject = (ALT_LANDMARK_SUBJECT if ALT_LANDMARK_SUBJECT in subjects
                       else subjects[1] if len(subjects) > 1 else None)
        upper_labels = others[1] if len(others) > 1 else None
        upper_video = others[2] if len(others) > 2 else None
        gap_subject = subjects[-1]
        truths, anomalies = [], []
        for i, s in enumerate(sessions):
            n_labels = s.n_frames - 1 if s.subject == SHORT_SUBJECT else s.n_frames
            # labels: every coded AU, some files with a BOM, one subject in upper case
            label_dir = dest / "ActionUnit_Labels" / s.subject
            label_dir.mkdir(parents=True, exist_ok=True)
            for j, au in enumerate(LABEL_AUS):
                name = f"{s.subject}_AU{au}.txt" if s.subject == upper_labels else f"{s.subject}_au{au}.txt"
                values = s.written[:n_labels, ALL_AUS.index(au)]
                text = "".join(f"{f + 1},{int(v)}\n" for f, v in enumerate(values))
                bom = "\ufeff" if (i + j) % 5 == 0 else ""
                (label_dir / name).write_text(bom + text, encoding="utf-8")
            # video: left camera, a few extra frames for one subject
            video_name = (f"LeftVideo{s.subject}_Comp.avi" if s.subject == upper_video
                          else f"LeftVideo{s.subject}_comp.avi")
            extra = EXTRA_VIDEO_FRAMES if s.subject == extra_subject else 0
            marks = write_video(dest / "Videos_LeftCamera" / video_name, s.frames(), extra)
            # landmarks: one 1-based 66-point file per video frame, one file left out
            lm_dir = dest / "Landmark_Points" / s.subject / "tmp_frame_lm"
            lm_dir.mkdir(parents=True, exist_ok=True)
            skip = int(rng.integers(0, n_labels)) if s.subject == gap_subject else None
            for f, pts in enumerate(marks):
                if f == skip:
                    continue
                name = f"l0{f:04d}_lm.mat" if s.subject == alt_subject else f"{s.subject}_{f:04d}_lm.mat"
                scipy.io.savemat(lm_dir / name, {"pts": pts[POINTS_66].astype(np.float64) + 1.0})
            if skip is not None:
                anomalies.append(("missing_landmarks", f"Landmark_Points/{s.subject}/tmp_frame_lm"))
            cols = [ALL_AUS.index(a) for a in proto.aus]
            intensities = s.written[:n_labels, cols].astype(np.int8)
            labels, _ = proto.label.encode(intensities)
            truths.append(SessionTruth(
                s.subject, SESSION, list(range(1, n_labels + 1)), labels, intensities,
                landmark_points=66, landmarks_missing=[] if skip is None else [skip + 1]))
        return Truth(truths, anomalies)
