"""The subject-bootstrap intervals hold their coverage of a known truth (austack.results.stats).

A simulated detector on a simulated population of subjects, whose F1 on the whole population
is known in closed form: each subject has its own base rate, hit rate and false-alarm rate,
drawn from Beta distributions, and 100 frames. Every draw tests a fresh 3 folds of m subjects,
scores F1 as austack does (mean over folds of each fold's pooled-count F1) and asks whether the
95% interval holds the population F1. The plain percentile bootstrap under-covers with 3
subjects per fold; the widened interval austack prints must cover about 95% at 3, 5, 10 and
30 subjects per fold; below MIN_SUBJECTS_PER_FOLD it is flagged.
"""
from __future__ import annotations

import numpy as np
import pytest

from austack.errors import ResultsError
from austack.results.stats import (MIN_SUBJECTS_PER_FOLD, FoldCounts, bootstrap, confusion_by_subject,
                                   paired_bootstrap)

FRAMES = 100
BASE, HIT, FALSE_ALARM = (2, 6), (6, 3), (1, 8)     # Beta(a, b) per subject
DRAWS, N_BOOT = 300, 300                             # binomial SE of a coverage ~1.3 points


def population_f1() -> float:
    mean = lambda ab: ab[0] / sum(ab)   # noqa: E731  (the rates are drawn independently)
    p, hit, fa = mean(BASE), mean(HIT), mean(FALSE_ALARM)
    tp, fn, fp = p * hit, p * (1 - hit), (1 - p) * fa
    return 2 * tp / (2 * tp + fp + fn)


def fold(rng: np.random.Generator, k: int, m: int) -> FoldCounts:
    p, hit, fa = rng.beta(*BASE, m), rng.beta(*HIT, m), rng.beta(*FALSE_ALARM, m)
    pos = rng.binomial(FRAMES, p)
    tp, fp = rng.binomial(pos, hit), rng.binomial(FRAMES - pos, fa)
    counts = np.stack([tp, fp, pos - tp, np.full(m, FRAMES)], axis=-1)[None, :, None, :]   # [1 seed, m, 1 AU, 4]
    return FoldCounts(k, np.array([f"f{k}s{i}" for i in range(m)]), counts)   # folds hold other people


def coverage(m: int, widened: bool = True) -> float:
    rng, truth, hits = np.random.default_rng(m), population_f1(), 0
    for i in range(DRAWS):
        b = bootstrap([fold(rng, k, m) for k in (1, 2, 3)], [1], n_boot=N_BOOT, seed=i)
        if widened:
            low, high = b.mean_f1.low, b.mean_f1.high
        else:
            low, high = np.quantile(b.draws, [0.025, 0.975])
        hits += low <= truth <= high
    return hits / DRAWS


@pytest.mark.parametrize("m", [3, 5, 10, 30])
def test_the_printed_interval_covers_the_truth_95_percent_of_the_time(m):
    assert 0.90 <= coverage(m) <= 0.99


def test_the_plain_percentile_interval_undercovers_with_three_subjects():
    assert coverage(3, widened=False) < 0.89     # why the interval is widened


def test_below_the_minimum_subject_count_the_interval_is_flagged():
    rng = np.random.default_rng(0)
    folds = [fold(rng, 1, 5), fold(rng, 2, MIN_SUBJECTS_PER_FOLD - 1)]
    assert "fold 2 has 2 test subjects" in bootstrap(folds, [1], n_boot=50).flag
    assert "fewer than the 3" in paired_bootstrap(folds, folds, n_boot=50).flag
    assert bootstrap([fold(rng, 1, MIN_SUBJECTS_PER_FOLD)], [1], n_boot=50).flag == ""
    with pytest.raises(ResultsError, match="fold 1 has 1 test subject"):
        bootstrap([fold(rng, 1, 1)], [1], n_boot=50)


def test_an_au_without_known_labels_is_left_out_like_the_avg():
    """AU 2 has no known label in fold 1: the interval's estimate is the printed Avg, and AU 2's
    own estimate comes from fold 2 alone."""
    from austack.metrics import evaluate

    rng = np.random.default_rng(3)
    folds, avgs, au2 = [], [], []
    for k in (1, 2):
        n, subjects = 60, np.repeat(["a", "b", "c"], 20)
        labels = (rng.random((n, 2)) < 0.4).astype(int)
        if k == 1:
            labels[:, 1] = -1
        probs = np.clip(labels * 0.6 + rng.random((n, 2)) * 0.5, 0, 1)
        names, counts = confusion_by_subject(probs, labels, subjects, [0.5, 0.5])
        folds.append(FoldCounts(k, names, counts[None]))
        scores = evaluate(probs, labels, [1, 2], 0.5)
        avgs.append(scores.f1_mean)
        au2.append(scores.f1[1])
    b = bootstrap(folds, [1, 2], n_boot=200)
    assert b.mean_f1.estimate == pytest.approx(np.mean(avgs))
    assert b.per_au[1].estimate == pytest.approx(au2[1])
    assert b.mean_f1.low <= b.mean_f1.estimate <= b.mean_f1.high
