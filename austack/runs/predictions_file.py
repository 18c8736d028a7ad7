"""Reading a fold's `predictions.npz` (written by `engine.rundir.save_predictions`), checked.

Every number re-derived without retraining (rescore, intervals, compare, studies) comes from
these files, so a torn, foreign or edited one must never give a result: it is read with
pickles refused, its recorded sha256 compared where one was recorded, and every array checked
for the keys, shapes, dtypes and value ranges the writer gives them. Any mismatch is one
ResultsError naming the file.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import ResultsError
from ..fileio import sha256_file

FIX = "rerun the fold that wrote it (`austack bench` with the same recipe)"


def _fail(path: Path, what: str) -> ResultsError:
    return ResultsError(f"{path} is not a usable predictions file: {what}; {FIX}", path=path)


def read_predictions(path: str | os.PathLike, *, sha256: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of a predictions file, each checked; `sha256` is the digest recorded with it."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"no predictions file at {path}; {FIX}", path=path)
    if sha256 and sha256_file(path) != sha256:
        raise ResultsError(f"{path} changed since it was recorded (sha256 differs); rerun the fold", path=path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise _fail(path, "a single array, not the .npz archive `austack bench` writes")
        with z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zipfile.LargeZipFile,
            zlib.error, NotImplementedError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise _fail(path, f"unreadable ({type(e).__name__}: {first})") from None
    _check(path, arrays)
    return arrays


def _check(path: Path, a: dict[str, np.ndarray]) -> None:
    for key in ("aus", "thresholds", "test_probs", "test_labels"):
        if key not in a:
            raise _fail(path, f"array {key!r} is missing")
    aus, thresholds = a["aus"], a["thresholds"]
    if aus.ndim != 1 or aus.dtype.kind not in "iu" or not len(aus) or (aus <= 0).any():
        raise _fail(path, f"'aus' is {aus.dtype} {aus.shape}, not a list of AU numbers")
    n_au = len(aus)
    if thresholds.shape != (n_au,) or thresholds.dtype.kind != "f":
        raise _fail(path, f"'thresholds' is {thresholds.dtype} {thresholds.shape}, not {n_au} numbers")
    if not ((thresholds >= 0) & (thresholds <= 1)).all():
        raise _fail(path, "a threshold is NaN or outside [0, 1]")
    splits = sorted({k.rsplit("_", 1)[0] for k in a if k.endswith(("_probs", "_labels", "_rows", "_subjects"))})
    for split in splits:
        _check_split(path, a, split, n_au)


def _check_split(path: Path, a: dict[str, np.ndarray], split: str, n_au: int) -> None:
    probs, labels = a.get(f"{split}_probs"), a.get(f"{split}_labels")
    if probs is None or labels is None:
        raise _fail(path, f"the {split} split lacks its probabilities or labels")
    if probs.ndim != 2 or probs.shape[1] != n_au or probs.dtype.kind != "f":
        raise _fail(path, f"'{split}_probs' is {probs.dtype} {probs.shape}, expected (frames, {n_au}) floats")
    n = len(probs)
    if labels.shape != (n, n_au) or labels.dtype.kind not in "iu":
        raise _fail(path, f"'{split}_labels' is {labels.dtype} {labels.shape}, expected ({n}, {n_au}) integers")
    if not ((probs >= 0) & (probs <= 1)).all():
        raise _fail(path, f"'{split}_probs' holds NaN or values outside [0, 1]")
    if not np.isin(labels, (-1, 0, 1)).all():
        raise _fail(path, f"'{split}_labels' holds values other than -1, 0, 1")
    rows, subjects = a.get(f"{split}_rows"), a.get(f"{split}_subjects")
    if rows is not None and (rows.shape != (n,) or rows.dtype.kind not in "iu" or (rows < 0).any()):
        raise _fail(path, f"'{split}_rows' is {rows.dtype} {rows.shape}, expected {n} store rows")
    if subjects is not None and (subjects.shape != (n,) or subjects.dtype.kind != "U"):
        raise _fail(path, f"'{split}_subjects' is {subjects.dtype} {subjects.shape}, expected {n} names")
