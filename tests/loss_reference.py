"""A direct, loop-based float64 reading of the AUNCE spec, written independently of
`austack.losses.aunce`: plain Python loops over AUs and anchors, math.exp / math.log, no masks.
Used by test_losses.py and the benchmark as the ground truth for every variant.
"""
from __future__ import annotations

import math

import numpy as np


def _normalise(z: np.ndarray) -> np.ndarray:
    return z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


def aunce_loop(z1, z2, labels, *, variant="paper", tau=0.5, p=None, beta_pos=None, beta_neg=None,
               weights=None, positive="sampled", reweight=True, beta_plus_one=False,
               minority_by="label", rates=None, u=None) -> float:
    """`u` holds the uniform draws the vectorised loss made: [2B, n_au] for the paper variant
    (one per anchor and AU), [n_au] for the reference one (one per AU)."""
    paper = variant == "paper"
    if p is None:
        p = (0.15, 0.15, 0.7) if paper else (0.2, 0.2, 0.6)
    beta_pos = 1.2 if beta_pos is None else beta_pos
    beta_neg = (0.4 if paper else 0.8) if beta_neg is None else beta_neg
    z = np.concatenate([np.asarray(z1, np.float64), np.asarray(z2, np.float64)])
    if not paper:
        z = np.maximum(z, 0.0)
    z = _normalise(z)
    y = np.concatenate([np.asarray(labels), np.asarray(labels)]).astype(int)
    n, n_au = y.shape
    b = n // 2

    def sim(a, c, i):
        return math.exp(float(z[a, i] @ z[c, i]) / tau)

    au_losses, au_counted = [], []
    for i in range(n_au):
        anchor_losses, any_negative = [], False
        for a in range(n):
            if y[a, i] < 0:
                continue
            other_view = (a + b) % n
            if paper:
                positives = [c for c in range(n) if c not in (a, other_view) and y[c, i] == y[a, i]]
            else:
                positives = [c for c in range(n) if y[c, i] == y[a, i]]
            negatives = [c for c in range(n) if y[c, i] >= 0 and y[c, i] != y[a, i]]
            any_negative = any_negative or bool(negatives)

            if paper:
                kind = positive
                if kind == "sampled":
                    draw = u[a, i]
                    kind = "max" if draw < p[0] else "view" if draw < p[0] + p[1] else "centroid"
                if not positives:
                    kind = "view"
                if kind == "max":
                    best = max(positives, key=lambda c: float(z[a, i] @ z[c, i]))
                    pos = sim(a, best, i)
                elif kind == "view":
                    pos = sim(a, other_view, i)
                else:
                    centroid = sum(z[c, i] for c in positives) / len(positives)
                    pos = math.exp(float(z[a, i] @ centroid) / tau)
            else:
                draw = u[i]
                if draw < p[0]:
                    pos = max(sim(a, c, i) for c in positives)
                elif draw < p[0] + p[2]:
                    pos = sum(sim(a, c, i) for c in positives) / n
                else:
                    pos = sim(a, other_view, i)

            if not reweight:
                exponent = 1.0
            else:
                if minority_by == "label":
                    minority = y[a, i] == 1
                else:
                    minority = y[a, i] == (1 if rates[i] <= 0.5 else 0)
                exponent = beta_pos if minority else beta_neg
                if beta_plus_one:
                    exponent += 1
            neg = sum(sim(a, j, i) ** exponent for j in negatives)
            anchor_losses.append(-math.log(pos / (pos + neg)))

        mean = sum(anchor_losses) / len(anchor_losses) if anchor_losses else 0.0
        au_losses.append(mean * (1.0 if weights is None else float(weights[i])))
        au_counted.append(any_negative)

    if not paper:
        return sum(au_losses) / n_au
    counted = [l for l, c in zip(au_losses, au_counted) if c]
    return sum(counted) / len(counted) if counted else 0.0
