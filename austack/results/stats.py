"""Confidence intervals and paired comparisons, with test subjects as the independent unit.

Frames of one person are not independent draws (the same face, the same habits), so every
interval here comes from a bootstrap over test *subjects*: a draw resamples, within each fold,
that fold's test subjects with replacement, and sums their confusion counts. Folds tested on the
same subjects (cross-dataset rows scoring each source fold on the whole target) share one
resample per draw, so a subject is drawn once for all of them, not once per fold. A result over
several folds (and seeds) is the mean over folds of each fold's F1 (seeds averaged within a
fold), the number papers report; each draw recomputes exactly that.

Inputs are the per-fold predictions every `austack bench` fold stores (`predictions.npz`): the
test split's probabilities, labels, subjects and the thresholds that were applied.

Few subjects: a resample of m subjects varies less than a new draw of m subjects would (by
(m-1)/m), and a plain percentile interval from 3 subjects per fold covers a known truth about
85% of the time. Each interval is therefore widened about its estimate by
sqrt(m/(m-1)) * t(df)/z (m: the smallest fold's subject count, df: subjects minus folds);
`tests/test_interval_coverage.py` checks by simulation that this holds about 95% coverage at 3,
5, 10 and 30 subjects per fold. Below MIN_SUBJECTS_PER_FOLD an interval is flagged
(`Bootstrap.flag`: its coverage is not checked), and a fold of one subject gives none (a
resample of one subject never varies). An AU with no known label in a fold (or in a draw's
resample of it) is left out of that fold's mean, as the printed Avg leaves it out.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ResultsError

N_BOOT = 2000
LEVEL = 0.95
MIN_SUBJECTS_PER_FOLD = 3   # below it an interval is flagged (see above); one subject: none
METHOD = "subject bootstrap, percentile, widened by sqrt(m/(m-1))*t(df)/z"


@dataclass
class FoldCounts:
    """Per test subject and AU confusion counts of one fold, for one or more seeds."""

    fold: int
    subjects: np.ndarray          # [S] subject ids, sorted
    counts: np.ndarray            # [seeds, S, n_au, 4]: tp, fp, fn, known (3 channels: all known)


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
    min_fold_subjects: int = 0
    method: str = METHOD
    flag: str = ""                # why the interval is not to be trusted ("" when its coverage is checked)

    def to_dict(self) -> dict:
        return {"aus": self.aus, "mean_f1": self.mean_f1.to_dict(), "per_au": [i.to_dict() for i in self.per_au],
                "n_subjects": self.n_subjects, "n_boot": self.n_boot, "level": self.level,
                "min_fold_subjects": self.min_fold_subjects, "method": self.method, "flag": self.flag}


def confusion_by_subject(probs: np.ndarray, labels: np.ndarray, subjects: np.ndarray,
                         thresholds: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted subjects [S], counts [S, n_au, 4]) of tp, fp, fn and known frames over each subject's
    known labels."""
    t = np.asarray(thresholds, dtype=np.float64)
    known = labels >= 0
    pred = (probs >= t) & known
    pos = labels == 1
    kinds = np.stack([pred & pos, pred & ~pos, ~pred & pos, known], axis=-1).astype(np.int64)   # [N, A, 4]
    names, index = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    counts = np.zeros((len(names), labels.shape[1], 4), np.int64)
    np.add.at(counts, index, kinds)
    return names, counts


def _f1(counts: np.ndarray) -> np.ndarray:
    """F1 from [..., 3] counts; 0 where an AU has neither a positive label nor prediction."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def _fold_f1(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per draw and AU, the seed-mean F1 of one fold: weights [B, S] subject multiplicities. NaN
    where the draw holds no known label of the AU (left out of means, as metrics.evaluate does)."""
    summed = np.einsum("bs,rsak->brak", weights, counts)      # [B, seeds, A, 3 or 4]
    f1 = _f1(summed)
    if counts.shape[-1] > 3:
        f1 = np.where(summed[..., 3] > 0, f1, np.nan)
    return f1.mean(axis=1)                                     # [B, A]


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def widening(fold_sizes: Sequence[int], level: float = LEVEL) -> float:
    """The factor a percentile interval is widened by about its estimate (module docstring)."""
    from scipy.stats import norm, t

    m = min(fold_sizes)
    df = sum(fold_sizes) - len(fold_sizes)
    q = 1 - (1 - level) / 2
    return float(np.sqrt(m / (m - 1)) * t.ppf(q, df) / norm.ppf(q))


def check_subjects(folds: Sequence["FoldCounts"]) -> str:
    """"" when every fold has enough test subjects, else the flag an interval carries; a fold of
    one subject is an error (no interval at all)."""
    sizes = [(f.fold, len(f.subjects)) for f in folds]
    k, m = min(sizes, key=lambda x: x[1])
    if m < 2:
        raise ResultsError(f"no interval: fold {k} has {m} test subject(s); a bootstrap over subjects needs at "
                           f"least 2 per fold")
    if m < MIN_SUBJECTS_PER_FOLD:
        return (f"fold {k} has {m} test subjects, fewer than the {MIN_SUBJECTS_PER_FOLD} whose coverage is "
                f"checked (tests/test_interval_coverage.py)")
    return ""


def _widened(draws: np.ndarray, estimate: float, scale: float, level: float) -> tuple[float, float]:
    kept = draws[~np.isnan(draws)]
    if kept.size == 0 or np.isnan(estimate):
        return float("nan"), float("nan")
    lo, hi = np.quantile(kept, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(estimate + scale * (lo - estimate)), float(estimate + scale * (hi - estimate))


def _draw_weights(rng: np.random.Generator, n_subjects: int, n_boot: int) -> np.ndarray:
    """Multiplicities of each subject in each bootstrap draw (a draw of n with replacement)."""
    return rng.multinomial(n_subjects, np.full(n_subjects, 1 / n_subjects), size=n_boot).astype(np.float64)


def _subject_draws(rng: np.random.Generator, n_boot: int):
    """Draw weights per fold; folds with the same test subjects get the same draws."""
    drawn: dict[tuple, np.ndarray] = {}

    def weights(fold: FoldCounts) -> np.ndarray:
        key = tuple(fold.subjects.tolist())
        if key not in drawn:
            drawn[key] = _draw_weights(rng, len(fold.subjects), n_boot)
        return drawn[key]
    return weights


def _n_subjects(folds: Sequence[FoldCounts]) -> int:
    return len({s for f in folds for s in f.subjects.tolist()})


def _group_sizes(folds: Sequence[FoldCounts]) -> list[int]:
    """Subjects per distinct group of test subjects: folds tested on the same people (source
    folds scored on one target) are one group, as they share each draw."""
    return list({tuple(f.subjects.tolist()): len(f.subjects) for f in folds}.values())


def bootstrap(folds: Sequence[FoldCounts], aus: Sequence[int], *, n_boot: int = N_BOOT, seed: int = 0,
              level: float = LEVEL) -> Bootstrap:
    """Widened percentile bootstrap over test subjects (stratified by fold) of per-AU and mean F1.
    The mean F1 of a draw is, like the printed Avg, the mean over folds of each fold's mean over
    its scored AUs."""
    flag = check_subjects(folds)
    weights = _subject_draws(np.random.default_rng(seed), n_boot)   # folds on the same subjects share draws
    draws = np.stack([_fold_f1(f.counts, weights(f)) for f in folds])                    # [K, B, A]
    point = np.stack([_fold_f1(f.counts, np.ones((1, len(f.subjects))))[0] for f in folds])         # [K, A]
    scale = widening(_group_sizes(folds), level)
    per_au_draws, per_au_point = _nanmean(draws, 0), _nanmean(point, 0)
    per_au = [Interval(float(per_au_point[a]), *_widened(per_au_draws[:, a], float(per_au_point[a]), scale, level))
              for a in range(len(aus))]
    means = _nanmean(_nanmean(draws, 2), 0)                                                         # [B]
    estimate = float(_nanmean(_nanmean(point, 1), 0))
    mean = Interval(estimate, *_widened(means, estimate, scale, level))
    return Bootstrap(list(aus), mean, per_au, _n_subjects(folds), n_boot, level, means,
                     min(len(f.subjects) for f in folds), flag=flag)


@dataclass
class PairedComparison:
    a_mean_f1: float
    b_mean_f1: float
    difference: Interval          # mean F1 of A minus B
    p_value: float                # two-sided, from the paired bootstrap
    n_subjects: int
    n_boot: int
    flag: str = ""

    def to_dict(self) -> dict:
        return {"a_mean_f1": self.a_mean_f1, "b_mean_f1": self.b_mean_f1, "difference": self.difference.to_dict(),
                "p_value": self.p_value, "n_subjects": self.n_subjects, "n_boot": self.n_boot, "flag": self.flag,
                "method": METHOD}


def paired_bootstrap(a: Sequence[FoldCounts], b: Sequence[FoldCounts], *, n_boot: int = N_BOOT, seed: int = 0,
                     level: float = LEVEL) -> PairedComparison:
    """A minus B in mean F1 on the same test subjects: each draw resamples the subjects once and
    scores both on them. The p-value is the two-sided bootstrap test of no difference."""
    _check_paired(a, b)
    flag = check_subjects(a)
    weights = _subject_draws(np.random.default_rng(seed), n_boot)
    diffs, point_a, point_b = [], [], []
    for fa, fb in zip(a, b):
        w = weights(fa)
        diffs.append(_nanmean(_fold_f1(fa.counts, w), 1) - _nanmean(_fold_f1(fb.counts, w), 1))
        one = np.ones((1, len(fa.subjects)))
        point_a.append(float(_nanmean(_fold_f1(fa.counts, one), 1)[0]))
        point_b.append(float(_nanmean(_fold_f1(fb.counts, one), 1)[0]))
    est = float(np.mean(point_a) - np.mean(point_b))
    scale = widening(_group_sizes(a), level)
    d = est + scale * (_nanmean(np.stack(diffs), 0) - est)     # the widened draws of the difference
    d = d[~np.isnan(d)]
    lo, hi = np.quantile(d, [(1 - level) / 2, 1 - (1 - level) / 2])
    # share of draws on the far side of zero, both tails, with the usual +1 correction
    tail = min((d <= 0).sum(), (d >= 0).sum())
    p = min(1.0, 2 * (tail + 1) / (d.size + 1))
    return PairedComparison(float(np.mean(point_a)), float(np.mean(point_b)), Interval(est, float(lo), float(hi)),
                            p, _n_subjects(a), n_boot, flag)


def contrast_bootstrap(results: Sequence[Sequence[FoldCounts]], weights: Sequence[float], *, n_boot: int = N_BOOT,
                       seed: int = 0, level: float = LEVEL) -> tuple[Interval, str]:
    """(interval, flag) of sum_i weights[i] * mean F1 of results[i], all scored on the same test
    subjects: each draw resamples them once and scores every result on them. A drop from the
    clean score is weights (1, -1); a difference of two drops (1, -1, -1, 1)."""
    for other in results[1:]:
        _check_paired(results[0], other)
    flag = check_subjects(results[0])
    rng = np.random.default_rng(seed)
    n_folds = len(results[0])
    draws, point = np.zeros(n_boot), 0.0
    for k in range(n_folds):
        w = _draw_weights(rng, len(results[0][k].subjects), n_boot)
        one = np.ones((1, w.shape[1]))
        for weight, folds in zip(weights, results):
            draws += weight * _nanmean(_fold_f1(folds[k].counts, w), 1) / n_folds
            point += weight * float(_nanmean(_fold_f1(folds[k].counts, one), 1)[0]) / n_folds
    scale = widening([len(f.subjects) for f in results[0]], level)
    return Interval(point, *_widened(draws, point, scale, level)), flag


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
