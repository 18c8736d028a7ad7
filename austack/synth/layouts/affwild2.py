"""Writes synthetic sessions in Aff-Wild2's ABAW AU-detection layout, with its irregularities.

Each session is a video: `cropped_aligned/<video>/00001.jpg` 112x112 face crops (the frame
rotated and scaled around its landmarks) and `annotations/AU_Detection_Challenge/<set>/<video>.txt`.
Videos are spread over Train_Set and Validation_Set (every third base video validates), and a
two-person video is written as `<video>_left` / `<video>_right` in the same set.

Injected on purpose (and listed in `Truth`): one annotated row of -1 in every column (its crop
exists; the reader drops the row) and one missing crop of an annotated frame.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ...datasets.affwild2 import HEADER, HEADER_AUS
from ...errors import ConfigError
from ...protocols import load_protocol
from .base import ALL_AUS, LayoutWriter, SessionTruth, SynthSession, Truth, register_layout

CROP = 112
FACE_FRACTION = 0.75           # share of the crop the landmark box spans
ANNOTATIONS = "annotations/AU_Detection_Challenge"
SESSION = "1"
MAX_VIDEOS = 499              # video numbers 1..499


def face_crop(rgb: np.ndarray, pts68: np.ndarray, size: int = CROP) -> np.ndarray:
    """`size` x `size` crop of the face: eye line made horizontal, landmark box centred and scaled."""
    eye_l, eye_r = pts68[36:42].mean(0), pts68[42:48].mean(0)
    angle = np.degrees(np.arctan2(eye_r[1] - eye_l[1], eye_r[0] - eye_l[0]))
    centre = (pts68.min(0) + pts68.max(0)) / 2
    span = max(float(np.ptp(pts68[:, 0])), float(np.ptp(pts68[:, 1])), 1.0)
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, FACE_FRACTION * size / span)
    m[:, 2] += (size - 1) / 2 - centre
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def base_name(video: str) -> str:
    return video.removesuffix("_left").removesuffix("_right")


@register_layout("affwild2")
class AffWild2Layout(LayoutWriter):
    layout = "affwild2"
    protocol = "affwild2-official"

    def subject_ids(self, n: int, rng: np.random.Generator) -> list[str]:
        """Video names in the release's styles (`12-24-1920x1080`, `video31`); from 3 on, the last
        two are a `_left` / `_right` pair."""
        if n > MAX_VIDEOS:
            raise ConfigError(f"affwild2 synth names {MAX_VIDEOS} videos at most: "
                              f"pass --subjects {MAX_VIDEOS} or fewer")
        numbers = rng.choice(np.arange(1, MAX_VIDEOS + 1), size=n, replace=False)
        names = [f"{k}-30-1280x720" if i % 2 else f"video{k}" for i, k in enumerate(numbers)]
        if n >= 3:
            names[-2:] = [f"{names[-2]}_left", f"{names[-2]}_right"]
        return sorted(names)

    def session_ids(self, subject: str, n: int) -> list[str]:
        return [SESSION]     # a video is annotated once

    def write(self, dest: Path, sessions: list[SynthSession], rng: np.random.Generator) -> Truth:
        proto = load_protocol(self.protocol)
        dest = Path(dest)
        sessions = sorted(sessions, key=lambda s: s.subject)
        bases = sorted({base_name(s.subject) for s in sessions})
        split = {b: "Validation_Set" if i % 3 == 1 else "Train_Set" for i, b in enumerate(bases)}
        # the invalid row goes to the first video, the missing crop to the last (frames differ)
        invalid_at = {sessions[0].subject: int(rng.integers(0, sessions[0].n_frames))}
        last = sessions[-1]
        choices = [f for f in range(last.n_frames) if invalid_at.get(last.subject) != f]
        missing_at = {last.subject: int(rng.choice(choices))} if choices else {}
        truths, anomalies = [], []
        for s in sessions:
            set_name = split[base_name(s.subject)]
            occurrence = (s.written[:, [ALL_AUS.index(a) for a in HEADER_AUS]] >= proto.label.positive_min)
            table = occurrence.astype(int)
            kept = np.ones(s.n_frames, bool)
            if s.subject in invalid_at:
                table[invalid_at[s.subject]] = -1
                kept[invalid_at[s.subject]] = False
                anomalies.append(("invalid_row", f"{ANNOTATIONS}/{set_name}/{s.subject}.txt"))
            labels_file = dest / ANNOTATIONS / set_name / f"{s.subject}.txt"
            labels_file.parent.mkdir(parents=True, exist_ok=True)
            labels_file.write_text("\n".join([HEADER, *(",".join(map(str, r)) for r in table)]) + "\n")

            crops = dest / "cropped_aligned" / s.subject
            crops.mkdir(parents=True, exist_ok=True)
            for f, (rgb, pts) in enumerate(s.frames()):
                if missing_at.get(s.subject) == f:
                    continue
                cv2.imwrite(str(crops / f"{f + 1:05d}.jpg"), cv2.cvtColor(face_crop(rgb, pts), cv2.COLOR_RGB2BGR))
            if s.subject in missing_at:
                kept[missing_at[s.subject]] = False
                anomalies.append(("missing_image", f"cropped_aligned/{s.subject}"))
            frames = np.flatnonzero(kept)
            labels = table[frames][:, [HEADER_AUS.index(a) for a in proto.aus]].astype(np.int8)
            truths.append(SessionTruth(s.subject, SESSION, [int(f) + 1 for f in frames], labels, split=set_name))
        return Truth(truths, anomalies)
