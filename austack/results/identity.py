"""What makes two results the same result: normalised settings and the results version.

`RESULTS_VERSION` names the meaning of a recorded number. It is bumped whenever training or
scoring changes what a row's F1 means (a new threshold rule, another split of the validation
subjects, a changed loss); rows of different versions never merge into one leaderboard row,
because the version is part of the config hash and of the board's experiment key. History:

1. everything recorded before the version was declared (rows carry no version);
2. config values normalised before hashing; `label_noise` holds the training noise (the
   store's synth noise moved to provenance `store_label_noise`).

`normalise` makes equal settings hash equal: numbers by value (`grad_clip=1` is `1.0`),
tuples as lists, mapping keys sorted, and a setting naming an existing file by that file's
sha256 (where the weights live does not change the number; their bytes do).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

RESULTS_VERSION = 2
UNVERSIONED = 1          # rows recorded before RESULTS_VERSION existed


def _is_path_like(text: str) -> bool:
    return os.sep in text or text.startswith("~") or Path(text).suffix.lower() in (".pth", ".pt", ".safetensors",
                                                                                   ".bin", ".ckpt", ".npz")


def normalise(value: Any) -> Any:
    """A JSON-ready value in which equal settings are equal (see the module docstring)."""
    from ..fileio import sha256_file

    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        x = float(value)
        if math.isnan(x):
            return "nan"
        return x
    if isinstance(value, str):
        text = value.strip()
        if text and _is_path_like(text):
            path = Path(text).expanduser()
            if path.is_file():
                return f"sha256:{sha256_file(path)}"
        return text
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, os.PathLike):
        return normalise(os.fspath(value))
    return str(value)


def identity_hash(settings: Mapping[str, Any], **parts: Any) -> str:
    """12 hex digits over normalised `settings`, the results version and any further `parts`."""
    blob = json.dumps({"config": normalise(dict(settings)), "results_version": RESULTS_VERSION,
                       **{k: normalise(v) for k, v in parts.items()}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def results_version_of(row: Any) -> int:
    """The results version a row was recorded under (1 for rows older than the constant)."""
    prov = getattr(row, "provenance", None) or {}
    try:
        return int(prov.get("results_version", UNVERSIONED))
    except (TypeError, ValueError):
        return UNVERSIONED
