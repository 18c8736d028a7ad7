"""What every export format shares: the fold plan, file names of the aligned faces, label
encodings, the face writer and the `austack-export.json` sidecar.

These codebases train on every subject outside the test part and select nothing on a
validation split, so an exported fold's train list is the protocol's train and val subjects
together; the sidecar says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .. import __version__
from ..errors import ConfigError
from ..fileio import atomic_write_text
from ..labels import occurrence_rates
from ..progress import make_progress
from ..protocols import Protocol
from ..store import JPEG_QUALITY, Store

SIDECAR = "austack-export.json"
TRAIN_RULE = ("train = every subject of the fold that is not in its test part (the protocol's "
              "validation subjects included): these codebases select on no validation split")

# The dataset name as the target codebases spell it in their file names.
DS_NAMES = {"bp4d": "BP4D", "disfa": "DISFA", "bp4d+": "BP4D+", "gft": "GFT", "affwild2": "AffWild2"}

# Which camera's frames a store holds, per dataset (datasets.md).
CAMERAS = {"bp4d": "the 2D frontal camera of Sequences(2D+3D)", "bp4d+": "the 2D frontal camera of 2D+3D",
           "disfa": "the left camera (Videos_LeftCamera)", "gft": "each participant's own video",
           "affwild2": "the ABAW cropped_aligned frames"}


def ds_name(store: Store) -> str:
    return DS_NAMES.get(store.dataset, store.dataset.upper())


def image_name(dataset: str, subject: str, session: str, frame: int, ext: str) -> str:
    """A stored frame's file name under the image root, as the target codebases name it:
    BP4D `F001/T1/2440.jpg` (the AU_OCC frame number, unpadded), DISFA `SN002/0.png` (the
    0-based left-camera video frame, i.e. label frame - 1); others subject/session/frame."""
    if dataset == "disfa":
        return f"{subject}/{int(frame) - 1}{ext}"
    return f"{subject}/{session}/{int(frame)}{ext}"


def image_names(store: Store) -> list[str]:
    """Every stored frame's file name (`image_name`), in the codebases' own image type: DISFA's
    lists name PNGs, the others JPEGs."""
    ext = ".png" if store.dataset == "disfa" else ".jpg"
    return [image_name(store.dataset, store.subjects[i], store.session_ids[i], store.frames[i], ext)
            for i in range(len(store))]


@dataclass
class FoldRows:
    index: int
    test_parts: tuple[str, ...]
    train: np.ndarray           # store rows, ascending
    test: np.ndarray

    def subjects(self, store: Store, rows: np.ndarray) -> list[str]:
        return sorted(set(store.subjects[rows].tolist()))

    def describe(self, store: Store, **extra) -> dict:
        """The fold as the sidecar records it: its parts, subjects and frame counts."""
        return {"fold": self.index, "test_parts": list(self.test_parts),
                "train_subjects": self.subjects(store, self.train), "test_subjects": self.subjects(store, self.test),
                "train_frames": int(len(self.train)), "test_frames": int(len(self.test)), **extra}

    def unknown_labels(self, store: Store) -> dict[str, int]:
        """Unknown label cells per split (written as the format's unknown code)."""
        return {"train": int((store.labels[self.train] < 0).sum()), "test": int((store.labels[self.test] < 0).sum())}


def fold_rows(store: Store, protocol: Protocol, folds: Sequence[int] | None = None) -> list[FoldRows]:
    """Per fold: train = train + val subjects of the protocol, test = its test subjects."""
    wanted = [f.index for f in protocol.folds] if not folds else list(folds)
    out = []
    for k in wanted:
        assigned = store.assignment(k, protocol)
        train = [u for u, s in assigned.items() if s in ("train", "val")]
        test = [u for u, s in assigned.items() if s == "test"]
        out.append(FoldRows(k, protocol.fold(k).test_parts, np.flatnonzero(np.isin(store.subjects, train)),
                            np.flatnonzero(np.isin(store.subjects, test))))
    return out


def au_weights(labels: np.ndarray, aus: Sequence[int], where: str) -> np.ndarray:
    """w_i = (1/r_i) / sum_j(1/r_j) * N over the training frames, r the occurrence rate of
    `labels.occurrence_rates` (the frames whose label is known)."""
    r = occurrence_rates(labels)
    bad = [a for a, x in zip(aus, r) if not (x > 0)]
    if bad:
        raise ConfigError(f"{where}: AU {', '.join(map(str, bad))} never occurs in the training frames, so "
                          f"its weight 1/rate is infinite; export a store whose training folds have positives")
    inv = 1.0 / r
    return inv / inv.sum() * len(inv)


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def format_ints(labels: np.ndarray) -> list[str]:
    return [" ".join(str(int(v)) for v in row) for row in labels]


class FaceWriter:
    """Writes stored faces as image files, each row once, with a progress bar. A JPEG store's
    bytes are copied as they are into .jpg files (no second compression)."""

    def __init__(self, store: Store, root: Path, name: Callable[[int], str], progress: bool | None = None,
                 transform: Callable[[int, np.ndarray], np.ndarray] | None = None):
        self.store, self.root, self.name, self.transform = store, root, name, transform
        self.progress = progress
        self.written: dict[int, str] = {}

    def write(self, rows: np.ndarray, label: str) -> None:
        todo = [int(i) for i in rows if int(i) not in self.written]
        if not todo:
            return
        s = self.store
        copy_bytes = s.settings.image_encoding == "jpeg" and self.transform is None
        with make_progress(disable=None if self.progress is None else not self.progress, unit="faces") as p:
            task = p.add_task(label, total=len(todo), detail="")
            for n, i in enumerate(todo):
                rel = self.name(i)
                path = self.root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                if copy_bytes and path.suffix == ".jpg":
                    path.write_bytes(np.asarray(s.image_bytes(i), np.uint8).tobytes())
                else:
                    rgb = s.image(i)
                    if self.transform is not None:
                        rgb = self.transform(i, rgb)
                    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix == ".jpg" else []
                    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
                        raise ConfigError(f"could not write {path}; check the folder is writable and has space")
                self.written[i] = rel
                if n % 64 == 0 or n == len(todo) - 1:
                    p.update(task, completed=n + 1, detail=str(s.subjects[i]))


@dataclass
class ExportReport:
    """What an export wrote: the sidecar's content (also written to `out/austack-export.json`)."""

    format: str
    out: Path
    doc: dict = field(default_factory=dict)

    @property
    def sidecar(self) -> Path:
        return self.out / SIDECAR


def sidecar_doc(store: Store, protocol: Protocol, fmt: str, *, unknown: str, geometry: dict,
                folds: list[dict], files: dict, extra: dict | None = None) -> dict:
    lab = protocol.label
    rule = (f"intensity >= {lab.positive_min} is active (1), lower is 0" if lab.kind == "intensity"
            else "raw code 1 is active, 0 absent")
    return {
        "austack_version": __version__, "format": fmt,
        "store": {"path": str(store.path), "identity": store.identity, "dataset": store.dataset,
                  "frames": len(store), "synthetic": store.source_synthetic},
        "protocol": {"id": protocol.id, "hash": protocol.hash},
        "aus": list(protocol.aus),
        "label_rule": {"kind": lab.kind, "positive_min": lab.positive_min,
                       "unknown_codes": list(lab.unknown_codes), "text": rule},
        "unknown_labels": unknown,
        "camera": CAMERAS.get(store.dataset, "as prepared"),
        "crop": geometry,
        "train_rule": TRAIN_RULE,
        "folds": folds, "files": files, **(extra or {}),
    }


def write_sidecar(out: Path, doc: dict) -> Path:
    """Written last: a folder without it is an interrupted export."""
    return atomic_write_text(out / SIDECAR, json.dumps(doc, indent=2, sort_keys=False) + "\n")


def prepare_out(out: Path, force: bool) -> Path:
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"--out {out} is not empty; pass --force to write over it, or give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def store_geometry(store: Store) -> dict:
    a = dict(store.settings.alignment)
    return {"size": store.size, "alignment": a,
            "text": f"{store.size} x {store.size} faces by austack's 49-point similarity alignment "
                    f"(box_enlarge {a.get('box_enlarge')}), as stored"}
