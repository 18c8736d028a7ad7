"""DETECTOR as given to `austack predict`: a detector file, a fold's run dir, or a run dir and
a fold number."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from .rundir import DETECTOR_NAME, fold_dir, fold_dirs, fold_number


def locate_detector(path: str | os.PathLike, fold: int | None = None) -> Path:
    """The detector file meant by `path` (and `fold` for a run dir holding several folds)."""
    p = Path(path).expanduser()
    if p.is_file():
        if fold is not None:
            raise ConfigError(f"--fold {fold} is for a run directory; {p} is a detector file "
                              f"already", path=p)
        return p
    if not p.is_dir():
        raise ConfigError(f"no detector at {p}; give a detector.pt saved by `austack bench`, or "
                          f"its run directory with --fold", path=p)
    if (p / DETECTOR_NAME).is_file() and fold is None:
        return p / DETECTOR_NAME
    folds = sorted(k for k, d in fold_dirs(p, DETECTOR_NAME) if d != p and fold_number(d) is not None)
    if not folds:
        raise ConfigError(f"{p} holds no fold<k>/{DETECTOR_NAME}; is it an `austack bench` run "
                          f"directory?", path=p)
    if fold is None and len(folds) == 1:
        fold = folds[0]
    if fold is None:
        raise ConfigError(f"{p} holds the detectors of folds {', '.join(map(str, folds))}; "
                          f"choose one with --fold", path=p)
    if fold not in folds:
        raise ConfigError(f"{p} has no detector for fold {fold}; it has folds "
                          f"{', '.join(map(str, folds))}", path=p)
    return fold_dir(p, fold) / DETECTOR_NAME
