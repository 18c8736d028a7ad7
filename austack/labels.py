"""AU label conventions shared by every layer: 1 active, 0 inactive, -1 unknown.

`occurrence_rates` is the one definition of an AU's rate (the share of 1 among the frames
whose label is known); readers, stores, the torch dataset, the losses' weights and the
reports all call it.
"""
from __future__ import annotations

import numpy as np


def rates_from_counts(positives, known) -> np.ndarray:
    """positives / known per AU; NaN where no label is known."""
    positives, known = np.asarray(positives, np.float64), np.asarray(known, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known > 0, positives / np.maximum(known, 1), np.nan)


def occurrence_rates(labels) -> np.ndarray:
    """Rate of label 1 per AU over the frames whose label is known (labels [N, n_au]); NaN
    for an AU with no known label."""
    y = np.asarray(labels)
    if y.ndim != 2:
        from .errors import ConfigError
        raise ConfigError(f"labels must be [frames, n_au], got shape {tuple(y.shape)}")
    return rates_from_counts((y == 1).sum(axis=0), (y >= 0).sum(axis=0))
