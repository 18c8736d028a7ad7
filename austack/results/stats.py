"""Confidence intervals and paired comparisons, with test subjects as the independent unit.

Frames of one person are not independent draws (the same face, the same habits), so every
interval here comes from a bootstrap over test *subjects*: a draw resamples, within each fold,
that fold's test subjects with replacement, and sums their confusion counts. A result over
several folds (and seeds) is the mean over folds of each fold's F1 (seeds averaged within a
fold), the number papers report; each draw recomputes exactly that.

Inputs are the per-fold predictions every `austack bench` fold stores (`predictions.npz`): the
test split's probabilities, labels, subjects and the thresholds that were applied.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ResultsError

N_BOOT = 2000
LEVEL = 0.95


@dataclass
class FoldCounts:
    """Per test subject and AU confusion counts of one fold, for one or more seeds."""

    fold: int
    subjects: np.ndarray          # [S] subject ids, sorted
    counts: np.ndarray            # [seeds, S, n_au, 3]: tp, fp, fn


@dataclass
class Interval:
    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass
class Bootstrap:
    """F1 (in [0, 1]) per AU and of the AU mean, with percentile intervals."""

    aus: list[int]
    mean_f1: Interval
    per_au: list[Interval]
    n_subjects: int
    n_boot: int
    level: float = LEVEL
    draws: np.ndarray = field(default=None, repr=False)   # [n_boot] mean F1 of each draw

    def to_dict(self) -> dict:
        return {"aus": self.aus, "mean_f1": self.mean_f1.to_dict(), "per_au": [i.to_dict() for i in self.per_au],
                "n_subjects": self.n_subjects, "n_boot": self.n_boot, "level": self.level}


def confusion_by_subject(probs: np.ndarray, labels: np.ndarray, subjects: np.ndarray,
                         thresholds: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted subjects [S], counts [S, n_au, 3]) of tp, fp, fn over each subject's known labels."""
    t = np.asarray(thresholds, dtype=np.float64)
    known = labels >= 0
    pred = (probs >= t) & known
    pos = labels == 1
    kinds = np.stack([pred & pos, pred & ~pos, ~pred & pos], axis=-1).astype(np.int64)   # [N, A, 3]
    names, index = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    counts = np.zeros((len(names), labels.shape[1], 3), np.int64)
    np.add.at(counts, index, kinds)
    return names, counts


def _f1(counts: np.ndarray) -> np.ndarray:
    """F1 from [..., 3] counts; 0 where an AU has neither a positive label nor prediction."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def _fold_f1(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per draw and AU, the seed-mean F1 of one fold: weights [B, S] subject multiplicities."""
    summed = np.einsum("bs,rsak->brak", weights, counts)      # [B, seeds, A, 3]
    return _f1(summed).mean(axis=1)                            # [B, A]


def _draw_weights(rng: np.random.Generator, n_subjects: int, n_boot: int) -> np.ndarray:
    """Multiplicities of each subject in each bootstrap draw (a draw of n with replacement)."""
    return rng.multinomial(n_subjects, np.full(n_subjects, 1 / n_subjects), size=n_boot).astype(np.float64)


def bootstrap(folds: Sequence[FoldCounts], aus: Sequence[int], *, n_boot: int = N_BOOT, seed: int = 0,
              level: float = LEVEL) -> Bootstrap:
    """Percentile bootstrap over test subjects (stratified by fold) of per-AU and mean F1."""
    rng = np.random.default_rng(seed)
    per_draw = np.mean([_fold_f1(f.counts, _draw_weights(rng, len(f.subjects), n_boot)) for f in folds], axis=0)
    point = np.mean([_fold_f1(f.counts, np.ones((1, len(f.subjects)))) for f in folds], axis=0)[0]   # [A]
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    per_au = [Interval(float(point[a]), *map(float, np.quantile(per_draw[:, a], [lo, hi]))) for a in range(len(aus))]
    means = per_draw.mean(axis=1)
    mean = Interval(float(point.mean()), *map(float, np.quantile(means, [lo, hi])))
    return Bootstrap(list(aus), mean, per_au, sum(len(f.subjects) for f in folds), n_boot, level, means)


@dataclass
class PairedComparison:
    a_mean_f1: float
    b_mean_f1: float
    difference: Interval          # mean F1 of A minus B
    p_value: float                # two-sided, from the paired bootstrap
    n_subjects: int
    n_boot: int

    def to_dict(self) -> dict:
        return {"a_mean_f1": self.a_mean_f1, "b_mean_f1": self.b_mean_f1, "difference": self.difference.to_dict(),
                "p_value": self.p_value, "n_subjects": self.n_subjects, "n_boot": self.n_boot}


def paired_bootstrap(a: Sequence[FoldCounts], b: Sequence[FoldCounts], *, n_boot: int = N_BOOT, seed: int = 0,
                     level: float = LEVEL) -> PairedComparison:
    """A minus B in mean F1 on the same test subjects: each draw resamples the subjects once and
    scores both on them. The p-value is the two-sided bootstrap test of no difference."""
    _check_paired(a, b)
    rng = np.random.default_rng(seed)
    diffs, point_a, point_b = [], [], []
    for fa, fb in zip(a, b):
        w = _draw_weights(rng, len(fa.subjects), n_boot)
        diffs.append(_fold_f1(fa.counts, w).mean(1) - _fold_f1(fb.counts, w).mean(1))
        one = np.ones((1, len(fa.subjects)))
        point_a.append(_fold_f1(fa.counts, one).mean())
        point_b.append(_fold_f1(fb.counts, one).mean())
    d = np.mean(diffs, axis=0)
    est = float(np.mean(point_a) - np.mean(point_b))
    lo, hi = np.quantile(d, [(1 - level) / 2, 1 - (1 - level) / 2])
    # share of draws on the far side of zero, both tails, with the usual +1 correction
    tail = min((d <= 0).sum(), (d >= 0).sum())
    p = min(1.0, 2 * (tail + 1) / (n_boot + 1))
    return PairedComparison(float(np.mean(point_a)), float(np.mean(point_b)), Interval(est, float(lo), float(hi)),
                            p, sum(len(f.subjects) for f in a), n_boot)


def _check_paired(a: Sequence[FoldCounts], b: Sequence[FoldCounts]) -> None:
    if [f.fold for f in a] != [f.fold for f in b]:
        raise ResultsError(f"A covers folds {[f.fold for f in a]} and B folds {[f.fold for f in b]}; a paired "
                           f"comparison needs the same folds")
    for fa, fb in zip(a, b):
        if not np.array_equal(fa.subjects, fb.subjects):
            raise ResultsError(f"fold {fa.fold}: A and B were tested on different subjects; compare results "
                               f"from the same store and protocol")


def fold_counts_from_files(paths_by_fold: dict[int, list[str | Path]]) -> list[FoldCounts]:
    """FoldCounts from the `predictions.npz` of each fold (one file per seed), in fold order."""
    from ..runs.rundir import load_predictions

    out = []
    for fold in sorted(paths_by_fold):
        names, stacks = None, []
        for path in paths_by_fold[fold]:
            p = load_predictions(path)
            if "test_subjects" not in p:
                raise ResultsError(f"{path} holds no test subjects (written by an older austack); rerun the "
                                   f"fold to get intervals", path=path)
            s, counts = confusion_by_subject(p["test_probs"], p["test_labels"], p["test_subjects"], p["thresholds"])
            if names is not None and not np.array_equal(names, s):
                raise ResultsError(f"fold {fold}: seeds were tested on different subjects ({path})", path=path)
            names = s
            stacks.append(counts)
        out.append(FoldCounts(fold, names, np.stack(stacks)))
    return out
