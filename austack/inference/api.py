"""The Python API of `austack predict`: a detector applied to image files, folders, videos or
RGB arrays, returning arrays (`Predictions`, and a DataFrame when pandas is installed) or
streaming a CSV. `Detector.predict_images` / `Detector.predict_video` call in here.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from ..datasets.base import Anomaly, AnomalyReport
from ..errors import ConfigError
from .faces import FaceFinder
from .frames import Frame, stream_frames
from .inputs import expand_inputs
from .output import columns, csv_sink, write_sidecar
from .runner import Row, Tally, predict_rows


@dataclass
class Predictions:
    """One entry per row of the CSV. No face: face 0, NaN box and probabilities, occurrence -1."""

    aus: list[int]
    input: np.ndarray          # str, the image or video file ("<array k>" for arrays)
    frame: np.ndarray          # int64, 0-based frame number in its video or folder
    time_s: np.ndarray         # float64, NaN for images
    face: np.ndarray           # int32, 0 = no face, k = the k-th face
    box: np.ndarray            # float32 [N, 4]: x, y, w, h of the face's 68 landmarks
    probs: np.ndarray          # float32 [N, n_au]
    occurrence: np.ndarray     # int8 [N, n_au]
    anomalies: list[Anomaly] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)

    def __len__(self) -> int:
        return len(self.frame)

    def to_pandas(self):
        """The CSV's columns as a pandas DataFrame (empty cells as NaN / <NA>)."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError("to_pandas needs pandas; install it with `pip install pandas`") from None
        cols = columns(self.aus)
        n = len(self.aus)
        occ = pd.DataFrame(self.occurrence, columns=cols[8 + n:]).astype("Int8")
        occ[self.face == 0] = pd.NA
        data = {"input": self.input, "frame": self.frame, "time_s": self.time_s, "face": self.face,
                **dict(zip(cols[4:8], self.box.T)), **dict(zip(cols[8:8 + n], self.probs.T))}
        return pd.concat([pd.DataFrame(data), occ], axis=1)


def collect(rows: Iterable[list[Row]], aus: Sequence[int], anomalies: list[Anomaly],
            tally: Tally) -> Predictions:
    flat = [r for batch in rows for r in batch]
    n_au = len(aus)
    nan_au = np.full(n_au, np.nan, np.float32)
    return Predictions(
        list(aus), np.array([r.source for r in flat], dtype=object),
        np.array([r.frame for r in flat], np.int64),
        np.array([np.nan if r.time_s is None else r.time_s for r in flat], np.float64),
        np.array([r.face for r in flat], np.int32),
        np.array([(np.nan,) * 4 if r.box is None else r.box for r in flat], np.float32).reshape(-1, 4),
        np.array([nan_au if r.probs is None else r.probs for r in flat], np.float32).reshape(-1, n_au),
        np.array([np.full(n_au, -1) if r.occurrence is None else r.occurrence for r in flat],
                 np.int8).reshape(-1, n_au),
        anomalies, tally)


def face_finder(detector, *, all_faces: bool = False, upsample: int = 0) -> FaceFinder:
    """The detector's own alignment (size, box enlargement), recorded from its training store."""
    a = detector.info.get("alignment") or {}
    if "size" not in a or "box_enlarge" not in a:
        raise ConfigError("this detector does not record the alignment its faces had (size, "
                          "box_enlarge); save it again with this austack's `austack bench`")
    if upsample not in (0, 1, 2, 3):
        raise ConfigError(f"upsample must be 0, 1, 2 or 3, got {upsample!r}")
    return FaceFinder(int(a["size"]), float(a["box_enlarge"]), all_faces=all_faces, upsample=upsample)


def _check_batch(batch_size: int) -> int:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def predict_paths(detector, paths: Iterable[str | os.PathLike], *, batch_size: int = 32,
                  all_faces: bool = False, upsample: int = 0,
                  on_frame: Callable[[Tally], None] | None = None) -> Predictions:
    """Predictions for image files, folders of images (numeric order) and videos, in order."""
    inputs, finder = expand_inputs(paths), face_finder(detector, all_faces=all_faces, upsample=upsample)
    report, tally = AnomalyReport(), Tally()
    rows = predict_rows(detector, stream_frames(inputs, report), finder, tally=tally,
                        batch_size=_check_batch(batch_size), on_frame=on_frame)
    return collect(rows, detector.aus, report.items, tally)


def _as_rgb(image: Any, k: int) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ConfigError(f"image {k}: expected an RGB uint8 array (H, W, 3) or a grey one "
                          f"(H, W), got {a.dtype} {a.shape}")
    return np.ascontiguousarray(np.repeat(a[:, :, None], 3, 2) if a.ndim == 2 else a)


def predict_arrays(detector, images: Iterable[Any], *, sequence: bool = False, batch_size: int = 32,
                   all_faces: bool = False, upsample: int = 0) -> Predictions:
    """Predictions for RGB uint8 arrays. `sequence`: they are consecutive frames of one clip (one
    landmark tracker follows the face, as for a video); else each is an image of its own."""
    finder = face_finder(detector, all_faces=all_faces, upsample=upsample)
    frames = (Frame(f"<array {k}>", k, None, _as_rgb(im, k), 0 if sequence else k, not sequence)
              for k, im in enumerate(images))
    tally = Tally()
    rows = predict_rows(detector, frames, finder, tally=tally, batch_size=_check_batch(batch_size))
    return collect(rows, detector.aus, [], tally)


def predict_images(detector, images, **options) -> Predictions:
    """Image files, folders, or RGB arrays (a list of them, or one)."""
    if isinstance(images, np.ndarray) and images.ndim in (2, 3) and images.dtype == np.uint8:
        images = [images]
    elif isinstance(images, (str, os.PathLike)):
        images = [images]
    images = list(images)
    if images and all(isinstance(i, np.ndarray) for i in images):
        return predict_arrays(detector, images, **options)
    if any(isinstance(i, np.ndarray) for i in images):
        raise ConfigError("predict_images takes either paths or arrays, not a mix of both")
    return predict_paths(detector, images, **options)


def predict_video(detector, path: str | os.PathLike, **options) -> Predictions:
    """Every frame of one video, the face followed by the landmark tracker."""
    (inp,) = expand_inputs([path])
    if inp.kind != "video":
        raise ConfigError(f"{path} is an image {inp.kind}, not a video; use predict_images", path=path)
    return predict_paths(detector, [path], **options)


def predict_to_csv(detector, detector_path, paths, out: str | os.PathLike, *, batch_size: int = 32,
                   all_faces: bool = False, upsample: int = 0, device: str = "cpu",
                   on_frame: Callable[[Tally], None] | None = None) -> tuple[Tally, list[Anomaly], Path]:
    """Stream the rows to the CSV `out` and write its sidecar; returns (tally, anomalies, sidecar)."""
    inputs, finder = expand_inputs(paths), face_finder(detector, all_faces=all_faces, upsample=upsample)
    out = Path(out).expanduser()
    check_out_folder(out)
    report, tally = AnomalyReport(), Tally()
    try:
        with csv_sink(out, detector.aus) as write:
            for rows in predict_rows(detector, stream_frames(inputs, report), finder, tally=tally,
                                     batch_size=_check_batch(batch_size), on_frame=on_frame):
                write(rows)
        tally.smallest_findable = getattr(finder, "smallest_findable", 0.0)
        settings = {"inputs": [str(p) for p in paths], "batch_size": batch_size, "all_faces": all_faces,
                    "upsample": upsample, "device": str(device), "torch": torch.__version__}
        side = write_sidecar(out, detector, detector_path, settings=settings, tally=tally,
                             anomalies=report.items)
    except OSError as e:   # a disk that filled mid-run (an input's errors are anomalies, not raised)
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
            raise
        raise ConfigError(f"cannot write {out} ({e.strerror or e}); pass --out in a folder with room",
                          path=out) from None
    return tally, report.items, side


def check_out_folder(out: Path) -> None:
    """The folder of `--out` exists and takes a file, before any frame is decoded."""
    from ..fileio import check_writable_dir

    if not out.parent.is_dir():
        raise ConfigError(f"the folder of --out {out} does not exist; create it first", path=out.parent)
    check_writable_dir(out.parent, "--out")
