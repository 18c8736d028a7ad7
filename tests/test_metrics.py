"""Per-AU F1 / accuracy against scikit-learn with unknown labels masked, and the fold summary."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import accuracy_score, f1_score

from austack.errors import ConfigError
from austack.metrics import evaluate, fold_summary, trivial_all_active

AUS = [1, 2, 4, 6, 7]


@st.composite
def scored_frames(draw):
    frames = draw(st.integers(1, 40))
    n_au = draw(st.integers(1, len(AUS)))
    labels = draw(arrays(np.int64, (frames, n_au), elements=st.sampled_from([-1, 0, 1])))
    scores = draw(arrays(np.float64, (frames, n_au), elements=st.floats(0, 1)))
    return scores, labels, AUS[:n_au]


@settings(max_examples=60, deadline=None)
@given(scored_frames())
def test_per_au_scores_match_sklearn_with_unknowns_masked(case):
    scores, labels, aus = case
    result = evaluate(scores, labels, aus)
    for i in range(len(aus)):
        known = labels[:, i] >= 0
        if not known.any():
            assert np.isnan(result.f1[i]) and np.isnan(result.accuracy[i]) and aus[i] in result.unscored
            continue
        y, pred = labels[known, i], (scores[known, i] >= 0.5).astype(int)
        assert result.f1[i] == pytest.approx(f1_score(y, pred, zero_division=0, labels=[0, 1]))
        assert result.accuracy[i] == pytest.approx(accuracy_score(y, pred))
        assert result.n_known[i] == known.sum() and result.n_positive[i] == (y == 1).sum()
    scored = [i for i in range(len(aus)) if (labels[:, i] >= 0).any()]
    if scored:
        assert result.f1_mean == pytest.approx(np.mean(result.f1[scored]))
        assert result.accuracy_mean == pytest.approx(np.mean(result.accuracy[scored]))


def test_threshold_and_torch_inputs():
    scores = torch.tensor([[0.5, 0.2], [0.49, 0.9], [0.1, 0.8]])
    labels = torch.tensor([[1, 0], [1, 1], [0, -1]])
    result = evaluate(scores, labels, [1, 2])
    assert result.f1.tolist() == pytest.approx([2 / 3, 1.0])   # 0.5 counts as active, 0.49 does not
    assert result.accuracy.tolist() == pytest.approx([2 / 3, 1.0])
    logits = evaluate(scores - 0.5, labels, [1, 2], threshold=0.0)
    assert logits.f1.tolist() == pytest.approx(result.f1.tolist())


def test_no_positive_prediction_and_no_positive_label_has_f1_zero():
    result = evaluate(np.zeros((4, 1)), np.zeros((4, 1)), [12])
    assert result.f1[0] == 0.0 and result.accuracy[0] == 1.0


def test_trivial_all_active_predictor():
    labels = np.array([[1, 0], [0, 0], [1, -1], [0, 1]])
    result = trivial_all_active(labels, [1, 2])
    rates = np.array([0.5, 1 / 3])
    np.testing.assert_allclose(result.f1, 2 * rates / (1 + rates))
    np.testing.assert_allclose(result.accuracy, rates)


def test_table_lists_every_au_and_the_mean():
    labels = np.array([[1, -1], [0, -1]])
    text = evaluate(np.array([[0.9, 0.1], [0.1, 0.9]]), labels, [1, 2]).table()
    assert "Avg." in text and "100.0" in text and "n/a" in text
    assert "not scored (no known label): AU 2" in text


def test_fold_summary_mean_and_sample_std():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (50, 3))
    folds = [evaluate(rng.random((50, 3)), labels, [1, 2, 4]) for _ in range(3)]
    summary = fold_summary(folds)
    f1 = np.stack([f.f1 for f in folds])
    np.testing.assert_allclose(summary.f1_mean, f1.mean(0))
    np.testing.assert_allclose(summary.f1_std, f1.std(0, ddof=1))
    means = [f.f1_mean for f in folds]
    assert summary.avg_f1_mean == pytest.approx(np.mean(means))
    assert summary.avg_f1_std == pytest.approx(np.std(means, ddof=1))
    assert summary.avg_accuracy_mean == pytest.approx(np.mean([f.accuracy_mean for f in folds]))
    assert "±" in summary.table() and summary.to_dict()["n_folds"] == 3
    assert np.isnan(fold_summary(folds[:1]).avg_f1_std)


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ConfigError, match="do not match"):
        evaluate(np.zeros((3, 2)), np.zeros((3, 2)), [1, 2, 4])
    with pytest.raises(ConfigError, match="1, 0 or -1"):
        evaluate(np.zeros((2, 1)), np.array([[9], [0]]), [1])
    with pytest.raises(ConfigError, match="NaN"):
        evaluate(np.array([[np.nan]]), np.array([[1]]), [1])
    a = evaluate(np.zeros((2, 1)), np.zeros((2, 1)), [1])
    b = evaluate(np.zeros((2, 1)), np.zeros((2, 1)), [2])
    with pytest.raises(ConfigError, match="like with like"):
        fold_summary([a, b])
    with pytest.raises(ConfigError, match="at least one fold"):
        fold_summary([])
