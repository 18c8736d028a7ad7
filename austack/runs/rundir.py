"""The run-directory format: every file name of a run dir, spelled here only, and the files
of a fold's folder, each written atomically.

A run dir holds one `fold<k>/` folder per fold (`fold_dir`, found again by `fold_dirs`), each:

`config.yaml` (the resolved config, fold and hashes), `epochs.csv` (one row per epoch),
`last.pt` (resume, `checkpoint`), `best.pt` (the supervised regime's best weights),
`detector.pt` (the self-describing detector, `austack.models.detector`) and `predictions.npz`
(validation and test probabilities, labels and store rows, from which `austack rescore`
recomputes every metric without retraining).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..fileio import atomic_open, atomic_write_text, sha256_file

CSV_COLUMNS = ("phase", "epoch", "train_loss", "val_f1_mean", "images_per_s", "seconds", "lr")
CONFIG_NAME = "config.yaml"
EPOCHS_NAME = "epochs.csv"
CHECKPOINT_NAME = "last.pt"
BEST_NAME = "best.pt"
DETECTOR_NAME = "detector.pt"
PREDICTIONS_NAME = "predictions.npz"
FOLD_PREFIX = "fold"


def fold_dir(run_dir: str | Path, fold: int) -> Path:
    """The folder of fold `fold` in a run dir."""
    return Path(run_dir) / f"{FOLD_PREFIX}{fold}"


def fold_number(folder: str | Path) -> int | None:
    """k for a folder named fold<k>, else None."""
    tail = Path(folder).name[len(FOLD_PREFIX):]
    return int(tail) if Path(folder).name.startswith(FOLD_PREFIX) and tail.isdigit() else None


def fold_dirs(path: str | Path, holding: str) -> list[tuple[int, Path]]:
    """(fold, folder) for each fold folder of the run dir `path` that holds the file `holding`,
    in name order; `path` itself when it is such a folder. A folder not named fold<k> gets its
    place in the list as its number. Empty when there is none."""
    path = Path(path)
    dirs = [path] if (path / holding).is_file() else sorted(p.parent for p in path.glob(f"{FOLD_PREFIX}*/{holding}"))
    return [(k if (k := fold_number(d)) is not None else i, d) for i, d in enumerate(dirs, 1)]


def write_config(run_dir: Path, config: dict[str, Any], **extra: Any) -> None:
    atomic_write_text(run_dir / CONFIG_NAME, yaml.safe_dump({**config, **extra}, sort_keys=False))


def read_config(run_dir: Path) -> dict[str, Any]:
    """A fold folder's resolved config (`write_config`)."""
    return yaml.safe_load((Path(run_dir) / CONFIG_NAME).read_text(encoding="utf-8"))


def write_epochs_csv(run_dir: Path, history: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for h in history:
        w.writerow({k: ("" if h.get(k) is None else h[k]) for k in CSV_COLUMNS})
    atomic_write_text(run_dir / EPOCHS_NAME, buf.getvalue())


def save_predictions(run_dir: Path, splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                     subjects: dict[str, np.ndarray], aus: list[int], thresholds: list[float]) -> tuple[Path, str]:
    """`predictions.npz` with `<split>_probs`, `<split>_labels`, `<split>_rows` (store rows) and
    `<split>_subjects` per split, the AU list and the thresholds applied; returns path and sha256."""
    arrays = {"aus": np.asarray(aus, np.int32), "thresholds": np.asarray(thresholds, np.float64)}
    for split, (probs, labels, rows) in splits.items():
        arrays.update({f"{split}_probs": probs.astype(np.float32), f"{split}_labels": labels.astype(np.int8),
                       f"{split}_rows": rows.astype(np.int64),
                       f"{split}_subjects": np.asarray(subjects[split]).astype(str)})
    path = run_dir / PREDICTIONS_NAME
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return path, sha256_file(path)


def load_predictions(path: str | Path, *, sha256: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of `predictions.npz`, each checked (and its sha256, when one was recorded)."""
    from .predictions_file import read_predictions
    return read_predictions(path, sha256=sha256)
