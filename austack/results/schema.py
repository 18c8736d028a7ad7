"""One measured result: a (recipe, fold) cell of a benchmark, as stored in the results DB.

The engine builds one `ResultRow` per fold, once, when the fold is scored; `austack.results.db` stores it;
leaderboards read it back. A failed cell is a row too (`status="error"`, `error` set), so a
grid never dies on one bad config and the failure stays on record.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ResultRow:
    # what was run
    dataset: str
    protocol: str                 # protocol id, e.g. bp4d-3fold@v1
    protocol_hash: str
    store: str                    # path of the prepared store
    store_checksum: str           # the store's content identity (images, labels, landmarks, ids, protocol)
    fold: int
    backbone: str
    loss: str
    loss_options: dict[str, Any]
    seed: int
    epochs: int
    config: dict[str, Any]        # the whole resolved BenchConfig
    aus: list[int]
    # what came out (F1 and accuracy in [0, 1], per AU in `aus` order)
    f1: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    f1_mean: float | None = None
    accuracy_mean: float | None = None
    selected_on: str = "val"      # split that chose the checkpoint/epoch; never "test"
    best_epoch: int | None = None
    val_f1_mean: float | None = None
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    pretrained: str | None = None  # weight file, None = random init
    comparable: bool = True        # False for debug subsampling (limit_train) and the like
    # how it ran
    device: str = ""
    austack_version: str = ""
    torch_version: str = ""
    git_sha: str | None = None
    wall_s: float | None = None
    images_per_s: float | None = None
    peak_mem_mb: float | None = None
    run_dir: str | None = None     # holds the resolved config, per-epoch CSV and checkpoints
    status: str = "ok"             # ok | error
    error: str | None = None
    created: str = ""              # ISO-8601 UTC
    # identity and what the number can be re-derived from (docs/results.md)
    config_hash: str = ""          # over every setting that can change the number (BenchConfig)
    synthetic: bool = False        # the store came from `austack synth`, never real data
    label_noise: float | None = None   # share of training labels the run flipped (results version >= 2;
    #                                    version 1 held the store's synth noise, now provenance store_label_noise)
    thresholds: list[float] = field(default_factory=list)   # per AU, as applied to the test split
    predictions: str | None = None     # npz: val/test probabilities, labels and store rows
    predictions_sha256: str | None = None
    detector: str | None = None        # the self-describing detector file of this fold
    provenance: dict[str, Any] = field(default_factory=dict)   # versions, weight sha256, git state
    # cross-dataset rows (docs/cross-dataset.md): the store that trained and selected the detector;
    # `dataset`, `protocol`, `store` and `store_checksum` then name the target that was scored.
    # Empty for a row scored on its own store's test fold.
    source_dataset: str = ""
    source_protocol: str = ""
    source_protocol_hash: str = ""
    source_store: str = ""
    source_store_checksum: str = ""
    test_split: str = ""               # cross rows: "all" (the whole target) or "fold<K>" (its test part)

    @property
    def cross(self) -> bool:
        """Trained on one store and scored on another."""
        return bool(self.source_store_checksum)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scores_of(row: ResultRow):
    """The row's test scores as `metrics.AUScores` (for `metrics.fold_summary`)."""
    import numpy as np

    from ..metrics import AUScores

    n = len(row.aus)
    return AUScores(list(row.aus), np.asarray(row.f1, float), np.asarray(row.accuracy, float), np.zeros(n, int),
                    np.zeros(n, int), list(row.thresholds) or 0.5)
