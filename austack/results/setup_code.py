"""How a measured row was made, as facts and as the short code the leaderboard prints.

The facts of a measured row (`measured_facts`): the split that selected the checkpoint, the
threshold rule, the starting weights, whether the store is synthetic, the training label noise
and the cross-dataset target. `measured_code` packs them into a few characters with the same
letters as the published rows' marks (`austack.published_provenance.mark`), so a reader sees at
a glance that a validation-selected row sits beside a test-selected one. Legend: `CODE_LEGEND`.
"""
from __future__ import annotations

import os
from typing import Any

from ..published_provenance import SELECTION_CODE, THRESHOLD_CODE
from .schema import ResultRow

CODE_LEGEND = ("Measured How adds: S synthetic store; n0.4 / m0.4 training labels flipped at 0.4 "
               "(symmetric / active AUs missed); >disfa scored on another dataset (cross-dataset target).")
_SELECTION = {"val": "validation", "test": "test"}
_THRESHOLD = {"0.5": "fixed 0.5", "val": "tuned on validation"}
# Config keys that may name the starting weights, most specific first (a tag before a file).
_INIT_KEYS = ("weights", "pretrained_tag", "init", "pretrained")


def init_of(row: ResultRow) -> str:
    """The starting weights: the resolved timm tag or file the run recorded (`provenance.weights`),
    else a tag or weight file's name from the row's config, else 'random'."""
    weights = (row.provenance or {}).get("weights")
    if isinstance(weights, dict) and weights.get("kind"):
        if weights["kind"] == "none":
            return "random"
        value = weights.get("tag") or weights.get("path") or ""
        return os.path.basename(value) if os.sep in value else value
    config = row.config or {}
    for key in _INIT_KEYS:
        value = config.get(key)
        if value:
            return os.path.basename(str(value)) if os.sep in str(value) else str(value)
    return os.path.basename(row.pretrained) if row.pretrained else "random"


def target_of(row: ResultRow) -> str | None:
    """The dataset a cross-dataset row was scored on (its `dataset`; `source_dataset` trained)."""
    return row.dataset if row.cross else None


def training_noise(row: ResultRow) -> float:
    """Share of training labels the run flipped (the store's own synth noise is separate)."""
    # The config is authoritative: rows of results version 1 kept the store's noise in label_noise.
    return float((row.config or {}).get("label_noise") or 0.0)


def measured_facts(row: ResultRow) -> dict[str, Any]:
    threshold = str((row.config or {}).get("threshold", "0.5"))
    return {"selection": _SELECTION.get(row.selected_on, row.selected_on or "unknown"),
            "threshold": _THRESHOLD.get(threshold, f"unknown ({threshold})"),
            "init": init_of(row), "synthetic": bool(row.synthetic), "training_noise": training_noise(row),
            "noise_kind": (row.config or {}).get("label_noise_kind") if training_noise(row) else None,
            "target": target_of(row)}


def measured_code(facts: dict[str, Any]) -> str:
    """E.g. "V5r", "Vvi S n0.4", "V5r m0.2", "V5i >disfa"."""
    code = SELECTION_CODE.get(facts["selection"], "?") + THRESHOLD_CODE.get(facts["threshold"], "?")
    code += "r" if facts["init"] == "random" else "i"
    extra = ["S"] if facts["synthetic"] else []
    if facts["training_noise"]:
        extra.append(f"{'m' if facts['noise_kind'] == 'missed' else 'n'}{facts['training_noise']:g}")
    if facts["target"]:
        extra.append(f">{facts['target']}")
    return " ".join([code, *extra])
