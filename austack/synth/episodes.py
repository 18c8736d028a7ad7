"""Per-AU intensity time series that behave like coded video, and label noise.

Each AU follows a smooth stationary Gaussian process z(t) (white noise through a Gaussian
filter). The AU occurs in the frames where z is highest: each session's threshold leaves exactly
round(rate * T) of its T frames above it (at least one), so every session, and so every fold's
training subjects, shows every AU at its target rate. (A fixed threshold hit the rate only in
the long run: with episodes of ~18 frames a 40-frame session holds zero to two of them, and
synthetic DISFA's AU25, meant at 27.8%, came out at 0% over six sessions.) Very short sessions
overstate rare AUs: one frame in eight is 12.5%. Intensity rises and falls with z, which gives
every episode an onset, an apex and an offset. The smoothing width
is chosen per AU (Rice's formula for the mean excursion above a level) so episodes last about
`EPISODE_FRAMES` frames whatever the rate. FACS-typical pairs share part of their process and
so co-occur more often than chance (cheek raiser with lip corner puller, inner with outer brow
raiser, jaw drop with lips part).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.stats import norm

from ..protocols import Protocol
from .layouts.base import ALL_AUS

# Occurrence rates (%) in the training sets, from the paper's Table I.
TABLE_I_RATES: dict[str, dict[int, float]] = {
    "bp4d": {1: 21.1, 2: 17.1, 4: 20.3, 6: 46.2, 7: 54.9, 10: 59.4, 12: 56.2, 14: 46.6, 15: 16.9,
             17: 34.4, 23: 16.5, 24: 15.2},
    "disfa": {1: 5.0, 2: 4.0, 4: 15.0, 6: 8.1, 9: 4.3, 12: 13.2, 25: 27.8, 26: 8.9},
    "gft": {1: 3.7, 2: 13.5, 4: 3.7, 6: 28.3, 10: 24.6, 12: 29.3, 14: 3.1, 15: 10.7, 23: 25.0, 24: 14.1},
    "affwild2": {1: 11.9, 2: 5.1, 4: 16.0, 6: 26.5, 7: 39.9, 10: 34.5, 12: 24.3, 15: 2.8, 23: 3.1,
                 24: 2.8, 25: 62.8, 26: 7.6},
}
# BP4D+ has no column in Table I; it was coded by the same team on the same AUs as BP4D.
RATE_SOURCE = {"bp4d+": "bp4d"}
DEFAULT_RATE = 0.08          # AUs the dataset does not code still appear, modestly
EPISODE_FRAMES = 18.0        # mean length of an occurrence episode, in frames
INTENSITY_STEP = 0.35        # rise of z (in standard deviations) per intensity level, at rate 0.5
# (driver, follower, correlation of their processes)
COUPLINGS: tuple[tuple[int, int, float], ...] = ((12, 6, 0.7), (1, 2, 0.7), (25, 26, 0.6))


def target_rates(protocol: Protocol) -> np.ndarray:
    """Occurrence rate per AU of ALL_AUS for synthetic data on `protocol`'s dataset."""
    table = TABLE_I_RATES.get(RATE_SOURCE.get(protocol.dataset, protocol.dataset), {})
    return np.array([table.get(au, DEFAULT_RATE * 100) / 100 for au in ALL_AUS])


def _sigma_for(rate: float) -> float:
    """Gaussian smoothing width (frames) giving excursions of mean length EPISODE_FRAMES.

    For a smooth Gaussian process with unit variance and correlation exp(-t^2 / (4 s^2)), the
    mean length of an excursion above u is P(z > u) / upcrossing rate
    = rate * 2 * pi * sqrt(2) * s / exp(-u^2 / 2).
    """
    u = norm.isf(rate)
    return EPISODE_FRAMES * np.exp(-u * u / 2) / (rate * 2 * np.pi * np.sqrt(2))


def _mean_excess(u):
    """E[z - u | z > u] for a standard normal z."""
    return norm.pdf(u) / norm.sf(u) - u


def _smooth_noise(n: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary unit-variance Gaussian process of n frames with smoothing width sigma."""
    pad = int(4 * sigma) + 1
    white = rng.standard_normal(n + 2 * pad)
    z = gaussian_filter1d(white, sigma, mode="constant", truncate=4.0)[pad:pad + n]
    # the filter's weights sum to 1; their squares to ~1 / (2 sqrt(pi) sigma)
    x = np.arange(-int(4 * sigma + 0.5), int(4 * sigma + 0.5) + 1)
    w = np.exp(-x * x / (2 * sigma * sigma))
    w /= w.sum()
    return z / np.sqrt(np.sum(w * w))


def au_intensities(n_frames: int, rates: np.ndarray, positive_min: int, rng: np.random.Generator,
                   couplings: tuple[tuple[int, int, float], ...] = COUPLINGS) -> np.ndarray:
    """int8 (n_frames, len(ALL_AUS)) intensities 0..5 whose occurrence (>= positive_min) runs
    at `rates` in the long run, in episodes with onset, apex and offset."""
    rates = np.clip(np.asarray(rates, float), 1e-4, 1 - 1e-4)
    index = {au: k for k, au in enumerate(ALL_AUS)}
    sigmas = np.clip([_sigma_for(r) for r in rates], 1.0, 60.0)
    z = np.stack([_smooth_noise(n_frames, s, rng) for s in sigmas], 1) if n_frames else np.zeros((0, len(ALL_AUS)))
    for driver, follower, rho in couplings:
        a, b = index[driver], index[follower]
        z[:, b] = rho * z[:, a] + np.sqrt(1 - rho * rho) * z[:, b]
    u = norm.isf(rates)
    threshold = _session_thresholds(z, rates)
    # positive_min at the threshold, one level per step above it (and below it, down to 1:
    # sub-threshold "trace" intensities exist where positive_min > 1). A rare AU's excursions
    # over its high threshold are shallow, so its step shrinks with the mean excess of z over
    # u: every AU then reaches its apex intensities about as often, not only the common ones.
    level = positive_min + np.floor((z - threshold) / (INTENSITY_STEP * _mean_excess(u) / _mean_excess(0.0)))
    return np.clip(level, 0, 5).astype(np.int8)


def positive_frames(n_frames: int, rate: float) -> int:
    """Frames of an n-frame session in which an AU of `rate` occurs: round(rate * n), at least 1."""
    return min(n_frames, max(1, int(np.floor(rate * n_frames + 0.5)))) if n_frames else 0


def _session_thresholds(z: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Per AU, the value of z that exactly `positive_frames` frames of this session reach."""
    n = len(z)
    if n == 0:
        return np.zeros(z.shape[1])
    counts = np.array([positive_frames(n, r) for r in rates])
    ordered = np.sort(z, axis=0)                 # ascending: the k-th largest is at n - k
    return ordered[n - counts, np.arange(z.shape[1])]


def apply_noise(clean: np.ndarray, rate: float, positive_min: int, rng: np.random.Generator) -> np.ndarray:
    """Flip occurrence of each (frame, AU) with probability `rate`; `clean` is left untouched.

    A flipped positive becomes intensity 0, a flipped negative becomes `positive_min`.
    """
    written = np.array(clean, dtype=np.int8, copy=True)
    if rate <= 0:
        return written
    flip = rng.random(written.shape) < rate
    positive = written >= positive_min
    written[flip & positive] = 0
    written[flip & ~positive] = positive_min
    return written
