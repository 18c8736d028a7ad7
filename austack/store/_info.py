"""`info`: what a store holds, per subject and per fold split, with its provenance."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..labels import occurrence_rates
from ..protocols import SPLITS
from ._reader import Store
from ._schema import text


@dataclass(frozen=True)
class GroupSummary:
    """Frames of one subject, or of one split of one fold, with the AU occurrence rates."""

    name: str            # subject id, or "fold 1 train"
    units: int           # sessions (per subject) or subjects/videos (per split)
    frames: int
    faces: int
    rates: tuple[float, ...]   # per AU: present / known, NaN where no frame is known


@dataclass
class StoreSummary:
    """`austack info`'s view of a finished store: counts per subject and fold split, anomalies."""

    path: Path
    dataset: str
    aus: tuple[int, ...]
    frames: int
    sessions: int
    faces: int
    attrs: dict                    # alignment, protocol, encoding, provenance (decoded)
    subjects: list[GroupSummary] = field(default_factory=list)
    folds: list[GroupSummary] = field(default_factory=list)
    anomalies: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        """JSON-ready (`austack info --json`): NaN rates become None, AUs key the rates."""
        def group(g: GroupSummary) -> dict:
            return {"name": g.name, "units": g.units, "frames": g.frames, "faces": g.faces,
                    "rates": {str(au): (None if r != r else r) for au, r in zip(self.aus, g.rates)}}

        return {"path": str(self.path), "dataset": self.dataset, "aus": list(self.aus), "frames": self.frames,
                "sessions": self.sessions, "faces": self.faces, "attrs": self.attrs,
                "subjects": [group(g) for g in self.subjects], "folds": [group(g) for g in self.folds],
                "anomalies": dict(self.anomalies)}


def describe_alignment(alignment: dict) -> str:
    """The alignment settings as a line for people: `similarity-49, 72 px, box 2x, ...`."""
    a = dict(alignment)
    parts = [str(a.pop("method", "?"))]
    if "size" in a:
        parts.append(f"{a.pop('size')} px")
    if "box_enlarge" in a:
        parts.append(f"box {a.pop('box_enlarge'):g}x")
    parts += [f"{k.replace('_', ' ')} {v}" for k, v in sorted(a.items())]
    return ", ".join(parts)


@dataclass(frozen=True)
class StoreInfo:
    """What a run needs to know of a store: its root attributes, read without loading any frame
    (`read_store_info`; `summarize` adds the per-subject and per-fold counts)."""

    path: str
    dataset: str
    protocol: str
    protocol_hash: str
    aus: tuple[int, ...]
    identity: str                  # content identity: images, labels, landmarks, ids, protocol
    image_size: int
    alignment: dict
    synthetic: bool = False
    label_noise: float | None = None


def read_store_info(path: str | os.PathLike) -> StoreInfo:
    """A store's `StoreInfo`, from its root attributes (no frame is read)."""
    from ._reader import open_store

    with open_store(path) as store:
        return StoreInfo(str(store.path), store.dataset, store.settings.protocol, store.settings.protocol_hash,
                         tuple(store.aus), store.identity, int(store.settings.alignment["size"]),
                         dict(store.settings.alignment), bool(store.source_synthetic), store.source_noise)


def label_rates(labels: np.ndarray) -> tuple[float, ...]:
    """Per column: share of 1 among the known (not -1) labels."""
    return tuple(occurrence_rates(labels).tolist())


def _group(name: str, units: int, rows: np.ndarray, store: Store) -> GroupSummary:
    return GroupSummary(name, units, len(rows), int(store.face[rows].sum()), label_rates(store.labels[rows]))


def info(path: str | os.PathLike) -> StoreSummary:
    """Summarise a finished store: per subject, per fold split, alignment and provenance."""
    with Store(path) as s:
        out = StoreSummary(s.path, s.dataset, s.aus, len(s), len(s.sessions), int(s.face.sum()), s.attrs)
        subjects = s.subjects
        session_subjects = Counter(map(text, s.sessions["subject"]))
        for subject in sorted(set(subjects.tolist())):
            out.subjects.append(_group(subject, session_subjects[subject], np.flatnonzero(subjects == subject), s))
        proto = s.protocol()
        for fold in proto.folds:
            assigned = proto.assign(fold.index, s.units())
            for split in SPLITS:
                units = [u for u, v in assigned.items() if v == split]
                out.folds.append(_group(f"fold {fold.index} {split}", len(units),
                                        np.flatnonzero(np.isin(subjects, units)), s))
        for a in s.anomalies():
            out.anomalies[a.kind] += a.count
    return out
