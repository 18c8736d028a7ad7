"""The test split scored against noisy labels: the same kind and level of flips the training
labels got, drawn with a recorded seed, applied to the stored test labels of each fold.

The engine scores every test split against the store's clean labels (the study's answer).
Scoring against noisy labels too shows what a user who only has noisy labels would measure;
the study reports it separately, never mixed with the clean scores.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ResultsError
from ..labels import flip_labels
from ..results.schema import ResultRow
from ..results.stats import N_BOOT, Bootstrap, FoldCounts, bootstrap, confusion_by_subject

TEST_SPLIT_INDEX = 2    # the engine draws train flips at index 0 and val flips at 1 (seed_for epoch)


def flip_seed(seed: int, fold: int) -> int:
    """The seed of a fold's test-label flips: the engine's "noise" stream, at the test index."""
    from ..engine.seeds import seed_for

    return seed_for(seed, "noise", fold=fold, epoch=TEST_SPLIT_INDEX)


def noisy_interval(rows: Sequence[ResultRow], level: float, kind: str, *, n_boot: int = N_BOOT,
                   seed: int = 0) -> tuple[Bootstrap, dict[tuple[int, int], float]]:
    """Bootstrap interval of mean F1 against noisy test labels over rows of one setting, and
    each (fold, seed)'s own mean F1 against them."""
    from ..runs.rundir import load_predictions
    from ..metrics import evaluate

    stacks: dict[int, list[np.ndarray]] = defaultdict(list)
    names: dict[int, np.ndarray] = {}
    per_row: dict[tuple[int, int], float] = {}
    for r in sorted((r for r in rows if r.status == "ok"), key=lambda r: (r.fold, r.seed)):
        if not r.predictions or not Path(r.predictions).is_file():
            raise ResultsError(f"fold {r.fold} seed {r.seed} of {r.loss} (config {r.config_hash}) has no "
                               f"stored predictions at {r.predictions}; rerun the study", path=r.predictions)
        p = load_predictions(r.predictions, sha256=r.predictions_sha256)
        y = flip_labels(p["test_labels"], level, kind, flip_seed(r.seed, r.fold))
        s, counts = confusion_by_subject(p["test_probs"], y, p["test_subjects"], p["thresholds"])
        names[r.fold] = s
        stacks[r.fold].append(counts)
        per_row[(r.fold, r.seed)] = float(evaluate(p["test_probs"], y, r.aus, p["thresholds"].tolist()).f1_mean)
    if not stacks:
        raise ResultsError("no finished fold to score against noisy test labels")
    folds = [FoldCounts(k, names[k], np.stack(stacks[k])) for k in sorted(stacks)]
    return bootstrap(folds, rows[0].aus, n_boot=n_boot, seed=seed), per_row
