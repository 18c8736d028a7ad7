"""Per-AU occurrence rates and the class-balancing weights w_i of eq. (1)."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from .. import labels as labels_module
from ..errors import ConfigError


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
    return np.asarray(x, dtype=np.float64)


def occurrence_rates(labels) -> np.ndarray:
    """Rate of label 1 per AU over the frames whose label is known (labels [N, n_au] in {1, 0, -1}).

    An AU without a single known label gets NaN, which `au_weights` skips (weight 0, a warning).
    """
    return labels_module.occurrence_rates(_as_numpy(labels))


class AUSkippedWarning(UserWarning):
    """An AU has no positive training label, so the weighted losses skip it (weight 0)."""


def skipped_aus(rates) -> np.ndarray:
    """Boolean mask of the AUs `au_weights` skips: rate 0 or NaN (no known label)."""
    r = _as_numpy(rates).reshape(-1)
    return np.isnan(r) | (r == 0)


def au_weights(rates, *, aus: Sequence[int] | None = None, min_rate: float | None = None) -> torch.Tensor:
    """w_i = n * (1/r_i) / sum_j (1/r_j) over the n AUs that occur: rare AUs weigh more, and
    the weights of the AUs that occur average to 1.

    `rates` are the occurrence rates of each AU over the TRAINING frames with a known label.
    Zero-rate rule: an AU that never occurs in the training frames (rate 0), or has no known
    label there (NaN), would get an infinite or undefined weight. It is skipped instead: its
    weight is 0, so the loss neither rewards nor punishes its output, and an `AUSkippedWarning`
    names it. Its detector stays untrained for that fold; evaluation still scores it on the
    test split (a fold whose training subjects lack an AU says so rather than failing).
    If no AU occurs at all there is nothing to learn, and that is an error. `min_rate`, if
    given, clamps every rate to [min_rate, 1] first, so no AU is skipped. `aus` only names the
    AUs in messages. Returns a float32 CPU tensor [n_au]; losses move it to their inputs' device.
    """
    r = _as_numpy(rates).reshape(-1)
    names = [f"AU{a}" for a in aus] if aus is not None else [f"AU index {i}" for i in range(r.size)]
    if len(names) != r.size:
        raise ConfigError(f"got {r.size} rates for {len(names)} AUs ({', '.join(names)})")
    if ((r < 0) | (r > 1)).any():
        raise ConfigError(f"occurrence rates must lie in [0, 1], got {r.tolist()}")
    if min_rate is not None:
        if not 0 < min_rate <= 1:
            raise ConfigError(f"min_rate must lie in (0, 1], got {min_rate}")
        r = np.where(np.isnan(r), min_rate, np.clip(r, min_rate, 1.0))
    skip = skipped_aus(r)
    if skip.all():
        raise ConfigError("no AU has a positive label over the training frames, so there is "
                          "nothing to learn; check the training split of the data")
    if skip.any():
        warnings.warn(f"{', '.join(n for n, s in zip(names, skip) if s)} never occur(s) in the "
                      f"training frames: skipped by the loss (weight 0) in this run",
                      AUSkippedWarning, stacklevel=2)
    inv = np.where(skip, 0.0, 1.0 / np.where(skip, 1.0, r))
    return torch.as_tensor((~skip).sum() * inv / inv.sum(), dtype=torch.float32)
