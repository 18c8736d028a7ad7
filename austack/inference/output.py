"""The prediction CSV and its sidecar JSON (`docs/predict.md` documents every column).

Columns: `input, frame, time_s, face, face_x, face_y, face_w, face_h`, then `AU01 ...` (the
detector's probability per AU, py-feat's naming) and `AU01_c ...` (0/1 at the detector's
thresholds, OpenFace's `_c`). A row with face=0 has empty box and AU cells: no value is made
up for a frame without a face. The CSV is written as a stream to a temporary sibling and
renamed when complete; the sidecar `<out>.json` names the detector, where it was trained, the
AU list, thresholds, settings, austack version and the run's summary and anomalies.
"""
from __future__ import annotations

import csv
import json
import os
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

from .. import __version__
from ..fileio import atomic_open, atomic_write_text, sha256_file
from .runner import Row

BASE_COLUMNS = ("input", "frame", "time_s", "face", "face_x", "face_y", "face_w", "face_h")


def au_column(au: int) -> str:
    return f"AU{int(au):02d}"


def columns(aus: list[int]) -> list[str]:
    names = [au_column(a) for a in aus]
    return [*BASE_COLUMNS, *names, *(f"{n}_c" for n in names)]


def _cells(row: Row, n_au: int) -> list[Any]:
    time_s = "" if row.time_s is None else f"{row.time_s:.4f}"
    box = ["" for _ in range(4)] if row.box is None else [f"{v:.1f}" for v in row.box]
    if row.probs is None:
        aus = [""] * (2 * n_au)
    else:
        aus = [f"{p:.6f}" for p in row.probs] + [int(c) for c in row.occurrence]
    return [row.source, row.frame, time_s, row.face, *box, *aus]


@contextmanager
def csv_sink(path: str | os.PathLike, aus: list[int]) -> Iterator:
    """`write(rows)` appends rows to the CSV at `path`, which appears only once complete."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns(aus))

        def write(rows: list[Row]) -> None:
            w.writerows(_cells(r, len(aus)) for r in rows)
        yield write


def sidecar_path(csv_path: str | os.PathLike) -> Path:
    p = Path(csv_path)
    return p.with_name(p.name + ".json")


def detector_description(detector, path: str | os.PathLike | None) -> dict[str, Any]:
    """What a reader of the CSV needs to know about the detector that wrote it."""
    desc = {"path": None if path is None else str(Path(path).resolve()),
            "sha256": None if path is None else sha256_file(path),
            "aus": list(detector.aus), "au_names": detector.au_names,
            "columns": [au_column(a) for a in detector.aus],
            "thresholds": list(detector.thresholds), "preprocess": detector.preprocess_spec}
    info = detector.info
    for key in ("dataset", "protocol", "protocol_hash", "fold", "loss", "regime", "config_hash",
                "synthetic", "store_identity", "best_epoch", "val_f1_mean", "alignment",
                "threshold_policy"):
        desc[key] = info.get(key)
    return desc


def write_sidecar(csv_path: str | os.PathLike, detector, detector_path, *, settings: dict,
                  tally, anomalies) -> Path:
    doc = {"austack_version": __version__, "csv": str(Path(csv_path).resolve()),
           "detector": detector_description(detector, detector_path),
           "columns": {"probability": "AUnn: P(AU active), from the detector, in [0, 1]",
                       "occurrence": "AUnn_c: 1 when AUnn >= the AU's threshold, else 0",
                       "face": "0: no face found (box and AU cells empty); k: the k-th face"},
           "settings": settings,
           "summary": {k: v for k, v in asdict(tally).items() if k != "started"},
           "anomalies": [asdict(a) for a in anomalies]}
    path = sidecar_path(csv_path)
    atomic_write_text(path, json.dumps(doc, indent=2, default=str) + "\n")
    return path
