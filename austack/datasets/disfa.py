"""DISFA: per-subject stereo videos with per-frame AU intensities (0-5) and 66 shipped landmarks.

Layout (names matched case-insensitively)::

    Videos_LeftCamera/LeftVideoSN001_comp.avi          (alias folder Video_LeftCamera/)
    Video_RightCamera/RightVideoSN001_Comp.avi         (used only with camera="right")
    ActionUnit_Labels/SN001/SN001_au1.txt              (no header; "frame,intensity", 1-based)
    Landmark_Points/SN001/tmp_frame_lm/SN001_0000_lm.mat   (MATLAB v5 `pts`, 66x2, 1-based
                                                        coordinates; file number = frame - 1;
                                                        some subjects name them l0NNNN_lm.mat)

Label frame f is video frame f - 1. One session per subject, named after the camera. Frame
counts are read from the files, never assumed (4845 per subject, SN010 4844 in the release):
the AU files of a subject must agree, videos may hold a few extra frames (ignored), and fewer
video frames than labels is reported, never padded. Landmarks belong to the left camera only.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import scipy.io

from ..errors import ConfigError, RawDataError
from .base import AnomalyReport, FrameRecord, PixelSource, Reader, SessionRecord, SessionRef, register_reader
from .pixels import video_frame_count

LABEL_DIR = "ActionUnit_Labels"
LANDMARK_DIR = "Landmark_Points"
# camera -> (accepted video folder names, video file regex capturing the subject)
CAMERAS = {
    "left": (("Videos_LeftCamera", "Video_LeftCamera"), r"leftvideo(sn\d{3})_comp\.avi"),
    "right": (("Video_RightCamera", "Videos_RightCamera"), r"rightvideo(sn\d{3})_comp\.avi"),
}
SUBJECT_RE = re.compile(r"sn\d{3}", re.I)
LABEL_FILE_RE = re.compile(r"(sn\d{3})_au(\d+)\.txt", re.I)
LANDMARK_FILE_RE = re.compile(r"(?:sn\d{3}_|l)(\d+)_lm\.mat", re.I)
LANDMARK_POINTS = 66


def child(folder: Path, *names: str) -> Path | None:
    """The entry of `folder` whose name equals one of `names` ignoring case (first name wins)."""
    if not folder.is_dir():
        return None
    entries = {p.name.lower(): p for p in sorted(folder.iterdir())}
    for name in names:
        if name.lower() in entries:
            return entries[name.lower()]
    return None


@register_reader("disfa")
class DisfaReader(Reader):
    dataset = "disfa"
    protocol = "disfa-3fold"
    expected = (f"{LABEL_DIR}/SN001/SN001_au1.txt label files and Videos_LeftCamera/LeftVideoSN001_comp.avi "
                f"videos (Video_RightCamera/RightVideoSN001_Comp.avi with camera='right'); "
                f"optional {LANDMARK_DIR}/SN001/tmp_frame_lm/SN001_0000_lm.mat")

    def __init__(self, root: str | os.PathLike, *, camera: str = "left", protocol: str | None = None,
                 **unknown):
        if unknown:
            raise ConfigError(f"disfa reader: unknown option(s) {sorted(unknown)}; valid: camera, protocol")
        if camera not in CAMERAS:
            raise ConfigError(f"disfa reader: camera must be one of {sorted(CAMERAS)}, got {camera!r}")
        self.camera = camera
        self.use_protocol(protocol)
        super().__init__(root, camera=camera, protocol=protocol)

    # --- layout ---------------------------------------------------------------------------
    def verify(self) -> None:
        self.label_dir = child(self.root, LABEL_DIR)
        if self.label_dir is None:
            raise self.not_found(f"no {LABEL_DIR}/ folder in {self.root}")
        folders, _ = CAMERAS[self.camera]
        self.video_dir = child(self.root, *folders)
        if self.video_dir is None:
            raise self.not_found(f"no {' or '.join(f + '/' for f in folders)} folder in {self.root}")
        if not any(SUBJECT_RE.fullmatch(p.name) and p.is_dir() for p in self.label_dir.iterdir()):
            raise self.not_found(f"{self.label_dir} holds no SNnnn subject folders")
        # Shipped landmarks are left-camera coordinates: never attach them to the right video.
        self.landmark_dir = child(self.root, LANDMARK_DIR) if self.camera == "left" else None
        _, video_re = CAMERAS[self.camera]
        self.videos = {m.group(1).upper(): p for p in sorted(self.video_dir.iterdir())
                       if (m := re.fullmatch(video_re, p.name, re.I))}

    def sessions(self) -> list[SessionRef]:
        subjects = sorted(p for p in self.label_dir.iterdir() if p.is_dir() and SUBJECT_RE.fullmatch(p.name))
        return [SessionRef(p.name.upper(), self.camera, str(p)) for p in subjects]

    # --- reading --------------------------------------------------------------------------
    def read_session(self, ref: SessionRef, anomalies: AnomalyReport) -> SessionRecord:
        label_dir = Path(ref.label_file)
        intensity, padded = self._read_labels(label_dir, ref.subject, anomalies)   # (T, n_au) raw codes
        labels, bad = self.label_protocol.label.encode(intensity)
        labels[padded] = -1
        bad &= ~padded
        intensity = np.where(bad | padded, -1, intensity).astype(np.int8)
        if bad.any():
            anomalies.add("unknown_code", label_dir, f"{int(bad.sum())} intensities outside 0-5 in "
                          f"{ref.subject}'s label files, stored as unknown (-1)", int(bad.sum()))
        n = len(labels)

        video = self.videos.get(ref.subject)
        if video is None:
            anomalies.add("missing_image", self.video_dir, f"no {self.camera}-camera video for {ref.subject}; "
                          f"its {n} labelled frames are skipped", n)
            return SessionRecord(ref.subject, ref.session, [])
        try:
            available = video_frame_count(video).container
        except RawDataError as e:
            anomalies.add("unreadable", video, f"{e}; {n} labelled frames skipped", n)
            return SessionRecord(ref.subject, ref.session, [])
        if available is not None and available < n:
            anomalies.add("count_mismatch", video, f"{available} video frames for {n} label lines: frames "
                          f"{available + 1}-{n} have no pixels and are skipped", n - available)
            n = available

        landmarks, scheme = self._read_landmarks(ref.subject, n, anomalies)
        frames = [FrameRecord(ref.subject, ref.session, f + 1, PixelSource("video", str(video), index=f),
                              labels[f], intensity[f], landmarks[f])
                  for f in range(n)]
        return SessionRecord(ref.subject, ref.session, frames, landmark_scheme=scheme)

    def _read_labels(self, folder: Path, subject: str, anomalies: AnomalyReport) -> tuple[np.ndarray, np.ndarray]:
        """Raw intensities (T, n_au) in protocol order, and the mask of lines a short file lacks."""
        files: dict[int, Path] = {}
        for p in sorted(folder.iterdir()):
            m = LABEL_FILE_RE.fullmatch(p.name)
            if m and m.group(1).upper() == subject:
                files[int(m.group(2))] = p
        missing = [a for a in self.label_protocol.aus if a not in files]
        if missing:
            raise RawDataError(f"{folder} has no label file for AU {', '.join(map(str, missing))} "
                               f"(expected {subject}_au{missing[0]}.txt)", path=folder)
        columns = {au: _read_label_file(p) for au, p in files.items()}
        lengths = {au: len(v) for au, v in columns.items()}
        n = max(lengths.values())
        if len(set(lengths.values())) > 1:
            short = {au: k for au, k in lengths.items() if k < n}
            anomalies.add("count_mismatch", folder, f"{subject}'s AU files disagree in length ({n} lines, but "
                          + ", ".join(f"AU{a}: {k}" for a, k in sorted(short.items()))
                          + "); the missing lines are stored as unknown (-1)",
                          sum(n - k for k in short.values()))
        out = np.zeros((n, len(self.label_protocol.aus)), np.int64)
        padded = np.ones_like(out, dtype=bool)
        for j, au in enumerate(self.label_protocol.aus):
            out[:lengths[au], j] = columns[au]
            padded[:lengths[au], j] = False
        return out, padded

    def _read_landmarks(self, subject: str, n: int, anomalies: AnomalyReport):
        if self.landmark_dir is None:          # not shipped with this copy (or right camera)
            return [None] * n, None
        folder = child(self.landmark_dir, subject)
        if folder is None:
            anomalies.add("missing_landmarks", self.landmark_dir / subject,
                          f"no landmark folder for {subject}; its {n} frames have no shipped landmarks", n)
            return [None] * n, None
        inner = child(folder, "tmp_frame_lm")
        folder = inner if inner is not None else folder
        by_number = {int(m.group(1)): p for p in folder.iterdir() if (m := LANDMARK_FILE_RE.fullmatch(p.name))}
        points: list[np.ndarray | None] = []
        absent, unreadable = [], []
        for f in range(n):                        # file number f belongs to label frame f + 1
            path = by_number.get(f)
            pts = None if path is None else _read_landmark_file(path)
            if path is None:
                absent.append(f + 1)
            elif pts is None:
                unreadable.append(f + 1)
                anomalies.add("unreadable", path, f"not a MATLAB file with a {LANDMARK_POINTS}x2 `pts` "
                              f"array; frame {f + 1} kept without landmarks")
            points.append(pts)
        if absent:
            anomalies.add("missing_landmarks", folder, f"no landmark file for {len(absent)} frame(s) of "
                          f"{subject}: {_span(absent)}; kept without landmarks", len(absent))
        return points, LANDMARK_POINTS


def _read_label_file(path: Path) -> np.ndarray:
    """Intensities of one `frame,intensity` file, checked to be numbered 1, 2, 3, ..."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
        table = np.array(rows, dtype=np.int64)
    except (UnicodeDecodeError, ValueError) as e:
        raise RawDataError(f"cannot parse DISFA label file {path}: expected lines 'frame,intensity' of "
                           f"integers ({e})", path=path) from None
    if table.ndim != 2 or table.shape[1] != 2:
        raise RawDataError(f"DISFA label file {path} must have two columns, frame and intensity", path=path)
    expected = np.arange(1, len(table) + 1)
    if not np.array_equal(table[:, 0], expected):
        line = int(np.argmax(table[:, 0] != expected))
        raise RawDataError(f"DISFA label file {path}: frames must run 1, 2, 3, ...; line {line + 1} "
                           f"has frame {table[line, 0]}", path=path)
    return table[:, 1]


def _read_landmark_file(path: Path) -> np.ndarray | None:
    try:
        pts = scipy.io.loadmat(str(path), variable_names=["pts"]).get("pts")
    except (OSError, ValueError, TypeError, NotImplementedError):
        return None
    if pts is None or np.shape(pts) != (LANDMARK_POINTS, 2):
        return None
    return (np.asarray(pts, np.float32) - 1.0)   # MATLAB 1-based -> 0-based pixels


def _span(frames: list[int], shown: int = 10) -> str:
    text = ", ".join(map(str, frames[:shown]))
    return text + (f" ... ({len(frames)} in all)" if len(frames) > shown else "")
