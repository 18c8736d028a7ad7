"""Per-AU occurrence rates and the class-balancing weights w_i of eq. (1)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import ConfigError


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
    return np.asarray(x, dtype=np.float64)


def occurrence_rates(labels) -> np.ndarray:
    """Rate of label 1 per AU over the frames whose label is known (labels [N, n_au] in {1, 0, -1}).

    An AU without a single known label gets NaN, which `au_weights` refuses with a clear error.
    """
    y = _as_numpy(labels)
    if y.ndim != 2:
        raise ConfigError(f"labels must be [frames, n_au], got shape {tuple(y.shape)}")
    known = (y >= 0).sum(axis=0)
    active = (y == 1).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known > 0, active / np.maximum(known, 1), np.nan)


def au_weights(rates, *, aus: Sequence[int] | None = None, min_rate: float | None = None) -> torch.Tensor:
    """w_i = n_au * (1/r_i) / sum_j (1/r_j): rare AUs weigh more, and the weights average to 1.

    `rates` are the occurrence rates of each AU over the TRAINING frames with a known label.
    Zero-rate rule: an AU that never occurs would get an infinite weight, so a rate of 0 (or a
    NaN rate: no known label at all) is an error, unless `min_rate` is given, in which case every
    rate is clamped to [min_rate, 1] first. `aus` only names the AUs in messages.
    Returns a float32 CPU tensor [n_au]; losses move it to their inputs' device.
    """
    r = _as_numpy(rates).reshape(-1)
    names = [f"AU{a}" for a in aus] if aus is not None else [f"AU index {i}" for i in range(r.size)]
    if len(names) != r.size:
        raise ConfigError(f"got {r.size} rates for {len(names)} AUs ({', '.join(names)})")
    if np.isnan(r).any():
        bad = ", ".join(n for n, v in zip(names, r) if np.isnan(v))
        raise ConfigError(f"no known label over the training frames for {bad}: its weight is undefined; "
                          f"drop it from the AU list of the run")
    if ((r < 0) | (r > 1)).any():
        raise ConfigError(f"occurrence rates must lie in [0, 1], got {r.tolist()}")
    if min_rate is not None:
        if not 0 < min_rate <= 1:
            raise ConfigError(f"min_rate must lie in (0, 1], got {min_rate}")
        r = np.clip(r, min_rate, 1.0)
    elif (r == 0).any():
        bad = ", ".join(n for n, v in zip(names, r) if v == 0)
        raise ConfigError(f"{bad} never occurs over the training frames (rate 0), so its weight 1/r is "
                          f"infinite; drop it from the AU list or pass min_rate= (e.g. 1e-3) to clamp rates")
    inv = 1.0 / r
    return torch.as_tensor(r.size * inv / inv.sum(), dtype=torch.float32)
