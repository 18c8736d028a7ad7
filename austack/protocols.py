"""Versioned, citable fold protocols, loaded from the YAML files in `protocols/`.

A protocol says which AUs a dataset is scored on, how raw codes become labels, and which
subjects (or videos) train, validate and test in each fold. Its identity is `name@vN` plus a
content hash over everything that changes results (AUs, label rule, parts, folds, validation
rule) and nothing that does not (titles, comments, key order, YAML formatting). Every prepared
store and every result row carries that hash.

Validation is always drawn from the fold's training units, never from its test part: the
units are sorted by sha256("<id>:fold<k>:<unit>") and the first round(fraction * n) are held
out (at least one when there are two or more training units).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import yaml

from ._resources import protocols_dir
from .errors import ProtocolError, UnknownNameError, did_you_mean

SPLITS = ("train", "val", "test")
_REQUIRED = ("name", "version", "dataset", "aus", "label", "folds", "validation")


@dataclass(frozen=True)
class LabelRule:
    kind: str                      # "occurrence" (codes 0/1) or "intensity" (0..5, thresholded)
    positive_min: int              # occurrence: 1; intensity: smallest intensity that counts
    unknown_codes: tuple[int, ...]  # raw codes stored as unknown (-1)

    def encode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw codes -> (labels int8 1/0/-1, mask of codes the dataset does not define).

        Undefined codes are stored as unknown (-1) and returned in the mask so the reader
        can report them with their file; they are never guessed.
        """
        raw = np.asarray(raw)
        unknown = np.isin(raw, self.unknown_codes)
        if self.kind == "intensity":
            valid = (raw >= 0) & (raw <= 5)
            labels = np.where(raw >= self.positive_min, 1, 0)
        else:
            valid = (raw == 0) | (raw == 1)
            labels = np.where(raw == 1, 1, 0)
        bad = ~valid & ~unknown
        labels = np.where(valid, labels, -1).astype(np.int8)
        return labels, bad


@dataclass(frozen=True)
class Fold:
    index: int
    test_parts: tuple[str, ...] = ()
    train_split: str | None = None   # select by the dataset's own split instead of parts
    test_split: str | None = None


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    dataset: str
    title: str
    defined_by: str
    source: str
    aus: tuple[int, ...]
    label: LabelRule
    parts: Mapping[str, tuple[str, ...]]
    folds: tuple[Fold, ...]
    validation_fraction: float
    path: str
    cite: tuple[str, ...] = ()      # BibTeX keys in protocols/datasets.bib (not part of the hash)

    @property
    def id(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def au_names(self) -> list[str]:
        return [f"AU{a}" for a in self.aus]

    def canonical(self) -> dict:
        """The content that defines results; the hash is taken over its JSON."""
        return {
            "name": self.name, "version": self.version, "dataset": self.dataset,
            "aus": list(self.aus),
            "label": {"kind": self.label.kind, "positive_min": self.label.positive_min,
                      "unknown_codes": sorted(self.label.unknown_codes)},
            "parts": {k: list(v) for k, v in sorted(self.parts.items())},
            "folds": [{"fold": f.index, "test": list(f.test_parts), "train_split": f.train_split,
                       "test_split": f.test_split} for f in self.folds],
            "validation": {"fraction": self.validation_fraction},
        }

    @property
    def full_hash(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def hash(self) -> str:
        """Short content hash (12 hex digits) used in stores, results and citations."""
        return self.full_hash[:12]

    def fold(self, k: int) -> Fold:
        for f in self.folds:
            if f.index == k:
                return f
        raise ProtocolError(f"{self.id} has no fold {k}; folds: {', '.join(str(f.index) for f in self.folds)}",
                            path=self.path)

    def assign(self, fold: int, units: Mapping[str, str | None] | Iterable[str]) -> dict[str, str]:
        """Map each unit (subject, or video for Aff-Wild2) present in the data to a split.

        `units` maps a unit to the dataset's own split name (Aff-Wild2) or is a plain list.
        Returns unit -> "train" | "val" | "test" | "unused" ("unused": in no part of the
        protocol, or in a dataset split the fold does not use).
        """
        f = self.fold(fold)
        units = dict(units) if isinstance(units, Mapping) else {u: None for u in units}
        out: dict[str, str] = {}
        if f.train_split or f.test_split:
            for u, s in units.items():
                out[u] = "train" if s == f.train_split else "test" if s == f.test_split else "unused"
        else:
            test = {u for p in f.test_parts for u in self.parts[p]}
            other_parts = [p for p in self.parts if p not in f.test_parts]
            train_pool = ({u for p in other_parts for u in self.parts[p]} if other_parts else None)
            for u in units:
                if u in test:
                    out[u] = "test"
                elif train_pool is None or u in train_pool:
                    out[u] = "train"
                else:
                    out[u] = "unused"
        train = sorted(u for u, s in out.items() if s == "train")
        n_val = 0 if len(train) < 2 else max(1, round(self.validation_fraction * len(train)))
        key = lambda u: hashlib.sha256(f"{self.id}:fold{fold}:{u}".encode()).hexdigest()
        for u in sorted(train, key=key)[:n_val]:
            out[u] = "val"
        return out

    def subjects(self, fold: int, split: str, units: Mapping[str, str | None] | Iterable[str]) -> list[str]:
        if split not in SPLITS:
            raise ProtocolError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return sorted(u for u, s in self.assign(fold, units).items() if s == split)


def shared_aus(source: Iterable[int], target: Iterable[int]) -> list[int]:
    """The AUs two protocols both label, in the source's order (what a cross-dataset row scores)."""
    target = set(target)
    return [a for a in source if a in target]


def _parse(path: Path) -> Protocol:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ProtocolError(f"cannot read protocol file {path}: {e}", path=path) from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"protocol file {path} is not a mapping", path=path)
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ProtocolError(f"protocol file {path} lacks {', '.join(missing)}", path=path)
    parts = {str(k): tuple(str(s) for s in v) for k, v in (raw.get("parts") or {}).items()}
    folds = []
    for f in raw["folds"]:
        fold = Fold(int(f["fold"]), tuple(f.get("test", ())), f.get("train_split"), f.get("test_split"))
        unknown = [p for p in fold.test_parts if p not in parts]
        if unknown:
            raise ProtocolError(f"{path}: fold {fold.index} tests on unknown part(s) {unknown}", path=path)
        folds.append(fold)
    seen: dict[str, str] = {}
    for p, members in parts.items():
        for s in members:
            if s in seen:
                raise ProtocolError(f"{path}: {s} is in both {seen[s]} and {p}", path=path)
            seen[s] = p
    lab = raw["label"]
    stem = f"{raw['name']}@v{raw['version']}"
    if path.stem != stem:
        raise ProtocolError(f"protocol file {path.name} must be named {stem}.yaml", path=path)
    return Protocol(
        name=str(raw["name"]), version=int(raw["version"]), dataset=str(raw["dataset"]),
        title=str(raw.get("title", raw["name"])), defined_by=str(raw.get("defined_by", "community")),
        source=str(raw.get("source", "")), aus=tuple(int(a) for a in raw["aus"]),
        label=LabelRule(str(lab["kind"]), int(lab["positive_min"]), tuple(int(c) for c in lab.get("unknown_codes", ()))),
        parts=parts, folds=tuple(folds), validation_fraction=float(raw["validation"]["fraction"]),
        path=str(path), cite=tuple(raw.get("cite", ())))


@cache
def _catalogue(folder: str) -> dict[str, Protocol]:
    return {p.id: p for p in map(_parse, sorted(Path(folder).glob("*.yaml")))}


def list_protocols(folder: str | Path | None = None) -> list[Protocol]:
    """All protocols, by dataset then name then version."""
    cat = _catalogue(str(folder or protocols_dir()))
    return sorted(cat.values(), key=lambda p: (p.dataset, p.name, p.version))


def load_protocol(name: str, folder: str | Path | None = None) -> Protocol:
    """Look up a protocol by `name@vN`, by `name` (latest version) or by dataset (its default).

    A path to a YAML file is loaded directly, so users can try a split of their own.
    """
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return _parse(Path(name))
    protos = list_protocols(folder)
    for p in protos:
        if p.id == name:
            return p
    for key in (lambda p: p.name, lambda p: p.dataset):
        hits = [p for p in protos if key(p) == name]
        if hits:
            return max(hits, key=lambda p: p.version)
    names = sorted({p.id for p in protos} | {p.name for p in protos} | {p.dataset for p in protos})
    hint = did_you_mean(name, names)
    raise UnknownNameError(f"unknown protocol {name!r}{hint} (available: {', '.join(p.id for p in protos)})")
