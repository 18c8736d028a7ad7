"""`study noise` drops: each loss against its own clean score, and the paired drop difference."""
from __future__ import annotations

import numpy as np
import pytest

from austack.results.stats import FoldCounts
from austack.studies.noise import Setting
from austack.studies.noise_drops import noise_drops, reading

SUBJECTS = 10


def counts(f1_hits: float, rng) -> list[FoldCounts]:
    """3 folds of SUBJECTS subjects, 100 positive frames each, `f1_hits` of them detected."""
    out = []
    for k in (1, 2, 3):
        tp = rng.binomial(100, f1_hits, SUBJECTS)
        c = np.stack([tp, np.full(SUBJECTS, 10), 100 - tp, np.full(SUBJECTS, 200)], -1)[None, :, None, :]
        out.append(FoldCounts(k, np.array([f"s{i}" for i in range(SUBJECTS)]), c))
    return out


def test_drops_are_measured_from_each_loss_own_clean_score():
    rng = np.random.default_rng(0)
    # wce starts high and falls far; aunce starts low and barely moves: its noisy F1 is lower, its drop smaller
    hits = {("wce", 0.0): 0.9, ("wce", 0.4): 0.6, ("aunce", 0.0): 0.55, ("aunce", 0.4): 0.53}
    settings = [Setting("symmetric", level, loss) for (loss, level) in hits]
    table = {id(s): counts(hits[s.loss, s.level], rng) for s in settings}
    rows, notes = noise_drops(settings, n_boot=300, counts_of=lambda s: table[id(s)])
    assert not notes
    drop = {r["loss"]: r for r in rows if r["what"] == "drop"}
    assert drop["wce"]["points"] > 20 and drop["aunce"]["points"] < 5
    [diff] = [r for r in rows if r["what"] == "drop difference"]
    assert (diff["loss"], diff["versus"]) == ("aunce", "wce")
    assert diff["points"] == pytest.approx(drop["aunce"]["points"] - drop["wce"]["points"])
    assert diff["high"] < 0 and diff["reading"] == "loses less"
    assert diff["low"] <= diff["points"] <= diff["high"]


def test_an_interval_holding_zero_supports_no_claim():
    assert reading(-1.0, 2.0) == "no difference shown"
    assert reading(0.5, 2.0) == "loses more"
