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
the session's frames are those its AU files list; a frame some AU file lacks keeps that AU
unknown (-1, reported `count_mismatch`); videos may hold a few extra frames (ignored); frames
the video lacks are reported, never padded. Landmarks belong to the left camera only.

Each AU file follows the rules of `base.py`: two cells per row (else `invalid_row`), the frame
rule (`invalid_row`, `out_of_order`), strict integers (an intensity that is not an integer in
0-5 is stored as -1 and reported `unknown_code`). Only the protocol's AU files are read.

Options (keyword arguments of the constructor, and of `create_reader("disfa", root, ...)`):
    camera: "left" | "right" = "left"   which camera's videos to read
    protocol: str                       protocol whose AUs and label rule are read
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from ..errors import RawDataError
from ..faces.decode import video_frame_count
from ._parse import is_blank, order_frames, parse_ints, read_rows, report_rows
from .base import (AnomalyReport, FrameRecord, Option, PixelSource, Reader, SessionRecord, SessionRef,
                   register_reader)

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

    declared_options = (Option("camera", "left", "which camera's videos to read", choices=tuple(CAMERAS)),)
    camera: str

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
    def _read_session(self, ref: SessionRef, anomalies: AnomalyReport) -> SessionRecord:
        label_dir = Path(ref.label_file)
        frames, raw, valid, present = self._read_labels(label_dir, ref.subject, anomalies)
        labels, bad = self.label_protocol.label.encode(raw)
        bad = (bad | ~valid) & present       # absent cells are reported by _read_labels
        unknown = bad | ~present
        labels[unknown] = -1
        intensity = np.where(unknown, -1, raw).astype(np.int8)
        odd = int(bad.sum())
        if odd:
            anomalies.add("unknown_code", label_dir, f"{odd} intensities that are not an integer 0-5 in "
                          f"{ref.subject}'s label files, stored as unknown (-1)", odd)
        n = len(frames)
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
        index = frames - 1                     # label frame f is video frame f - 1
        keep = (index >= 0) & (index < (available if available is not None else np.inf))
        if not keep.all():
            lost = frames[~keep].tolist()
            anomalies.add("count_mismatch", video, f"{available} video frames for {n} labelled frames: "
                          f"frame(s) {_span(lost)} have no pixels and are skipped", len(lost))
        rows = np.flatnonzero(keep)
        landmarks, scheme = self._read_landmarks(ref.subject, frames[rows].tolist(), anomalies)
        records = [FrameRecord(ref.subject, ref.session, int(frames[i]),
                               PixelSource("video", str(video), index=int(index[i])),
                               labels[i], intensity[i], points)
                   for i, points in zip(rows.tolist(), landmarks)]
        return SessionRecord(ref.subject, ref.session, records, landmark_scheme=scheme)

    def _read_labels(self, folder: Path, subject: str, anomalies: AnomalyReport):
        """Frame numbers (T,), raw intensities (T, n_au) in protocol order, the mask of cells
        that hold an integer, and the mask of cells whose AU file has the frame at all."""
        files: dict[int, Path] = {}
        for p in sorted(folder.iterdir()):
            m = LABEL_FILE_RE.fullmatch(p.name)
            if m and m.group(1).upper() == subject:
                files[int(m.group(2))] = p
        aus = self.label_protocol.aus
        missing = [a for a in aus if a not in files]
        if missing:
            raise RawDataError(f"{folder} has no label file for AU {', '.join(map(str, missing))} "
                               f"(expected {subject}_au{missing[0]}.txt)", path=folder)
        columns = {au: _read_label_file(files[au], anomalies) for au in aus}
        frames = np.array(sorted(set().union(*(c.keys() for c in columns.values()))), dtype=np.int64)
        raw = np.zeros((len(frames), len(aus)), np.int64)
        valid = np.zeros_like(raw, dtype=bool)
        present = np.zeros_like(raw, dtype=bool)
        lacking = {}
        for j, au in enumerate(aus):
            column = columns[au]
            for i, f in enumerate(frames.tolist()):
                value = column.get(f)
                if value is not None:
                    raw[i, j], valid[i, j] = value
                    present[i, j] = True
            absent = [f for f in frames.tolist() if f not in column]
            if absent:
                lacking[au] = absent
        if lacking:
            anomalies.add("count_mismatch", folder, f"{subject}'s AU files disagree: "
                          + "; ".join(f"AU{a} lacks frame(s) {_span(fs)}" for a, fs in lacking.items())
                          + "; stored as unknown (-1)", sum(map(len, lacking.values())))
        return frames, raw, valid, present

    def _read_landmarks(self, subject: str, frames: list[int], anomalies: AnomalyReport):
        n = len(frames)
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
        absent = []
        for f in frames:                          # file number f - 1 belongs to label frame f
            path = by_number.get(f - 1)
            pts = None if path is None else _read_landmark_file(path)
            if path is None:
                absent.append(f)
            elif pts is None:
                anomalies.add("unreadable", path, f"not a MATLAB file with a {LANDMARK_POINTS}x2 `pts` "
                              f"array; frame {f} kept without landmarks")
            points.append(pts)
        if absent:
            anomalies.add("missing_landmarks", folder, f"no landmark file for {len(absent)} frame(s) of "
                          f"{subject}: {_span(absent)}; kept without landmarks", len(absent))
        return points, LANDMARK_POINTS


def _read_label_file(path: Path, anomalies: AnomalyReport) -> dict[int, tuple[int, bool]]:
    """frame -> (intensity, is an integer) of one `frame,intensity` file, by the rules in base.py."""
    rows = [(line, cells) for line, cells in read_rows(path, "DISFA label file") if not is_blank(cells)]
    if not rows:
        raise RawDataError(f"DISFA label file {path} is empty; expected lines 'frame,intensity'", path=path)
    report_rows(anomalies, path, [line for line, cells in rows if len(cells) != 2], "without exactly two cells")
    rows = [(line, cells) for line, cells in rows if len(cells) == 2]
    frames, keep = order_frames([c[0] for _, c in rows], [line for line, _ in rows], path, anomalies)
    values, ok = parse_ints([rows[i][1][1] for i in keep.tolist()], signed=True)
    return {f: (v, o) for f, v, o in zip(frames.tolist(), values.tolist(), ok.tolist())}


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
