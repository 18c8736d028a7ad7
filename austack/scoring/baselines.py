"""The floor a trained detector is read against: the trivial predictor that calls every AU
active, scored on the test split of each fold of a store's protocol."""
from __future__ import annotations

import os


def trivial_all_active_f1(store: str | os.PathLike) -> dict[int, float]:
    """Fold -> Avg F1 (mean over AUs) of the predictor that calls every AU active, on each test
    fold of the store's protocol: the floor a trained detector's F1 should be read against."""
    from ..metrics import trivial_all_active
    from ..store import open_store

    with open_store(store) as s:
        protocol = s.protocol()
        labels = s.labels
        out = {}
        for fold in protocol.folds:
            rows = s.get_subset(protocol, fold=fold.index, split="test")
            out[fold.index] = float(trivial_all_active(labels[rows], protocol.aus).f1_mean)
    return out
