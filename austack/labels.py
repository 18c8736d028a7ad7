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


NOISE_KINDS = ("symmetric", "missed")


def flip_labels(labels, level: float, kind: str, seed: int) -> np.ndarray:
    """A copy of `labels` with `level` of the eligible labels flipped (a label-noise study):
    "symmetric" flips any known label, "missed" turns active labels inactive (an AU the
    annotator missed). Unknown labels stay -1. The flips depend on `seed` only."""
    y = np.array(labels, dtype=np.int8, copy=True)
    if not level:
        return y
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown label noise kind {kind!r}; expected one of {', '.join(NOISE_KINDS)}")
    rng = np.random.default_rng(seed)
    eligible = (y >= 0) if kind == "symmetric" else (y == 1)
    flip = eligible & (rng.random(y.shape) < level)
    y[flip] = 1 - y[flip]
    return y
