"""A summary of a raw distribution as its reader sees it, before anything is prepared.

`austack inspect` shows this: how many subjects, sessions and frames the reader finds, the
label rates over known labels, how many frames carry shipped landmarks, and every anomaly with
its file. Nothing is decoded; this reads label and landmark files only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .datasets import AnomalyReport, create_reader
from .labels import rates_from_counts
from .protocols import load_protocol


@dataclass
class SubjectSummary:
    subject: str
    sessions: int = 0
    frames: int = 0
    with_landmarks: int = 0
    positives: np.ndarray | None = None    # per AU, frames labelled 1
    known: np.ndarray | None = None        # per AU, frames with a known label


@dataclass
class RawSummary:
    dataset: str
    root: str
    protocol: str
    aus: tuple[int, ...]
    subjects: list[SubjectSummary] = field(default_factory=list)
    anomalies: AnomalyReport = field(default_factory=AnomalyReport)
    splits: dict[str, int] = field(default_factory=dict)     # frames per dataset split (Aff-Wild2)

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.subjects)

    @property
    def sessions(self) -> int:
        return sum(s.sessions for s in self.subjects)

    def rates(self) -> np.ndarray:
        """Occurrence rate per AU over all frames with a known label (NaN: none known)."""
        return rates_from_counts(sum(s.positives for s in self.subjects), sum(s.known for s in self.subjects))

    def unknown_fraction(self) -> np.ndarray:
        known = sum(s.known for s in self.subjects)
        return 1.0 - known / max(self.frames, 1)

    def to_dict(self) -> dict:
        """JSON-ready (`austack inspect --json`): rates keyed by AU (None where none is known)."""
        def per_au(values) -> dict:
            return {str(au): (None if v != v else float(v)) for au, v in zip(self.aus, values)}

        return {"dataset": self.dataset, "root": self.root, "protocol": self.protocol, "aus": list(self.aus),
                "frames": self.frames, "sessions": self.sessions, "splits": dict(self.splits),
                "subjects": [{"subject": s.subject, "sessions": s.sessions, "frames": s.frames,
                              "with_landmarks": s.with_landmarks} for s in self.subjects],
                "rates": per_au(self.rates()), "unknown": per_au(self.unknown_fraction()),
                "anomalies": dict(self.anomalies.counts())}


def summarize_raw(dataset: str, root: str | os.PathLike, **reader_options) -> RawSummary:
    reader = create_reader(dataset, root, **reader_options)
    protocol = load_protocol(reader.protocol)
    n_au = len(protocol.aus)
    out = RawSummary(dataset=dataset, root=str(reader.root), protocol=protocol.id, aus=protocol.aus)
    by_subject: dict[str, SubjectSummary] = {}
    for ref in reader.sessions():
        record = reader.read_session(ref, out.anomalies)
        s = by_subject.setdefault(ref.subject, SubjectSummary(ref.subject, positives=np.zeros(n_au, int),
                                                              known=np.zeros(n_au, int)))
        s.sessions += 1
        s.frames += len(record.frames)
        if record.frames:
            labels = np.stack([f.labels for f in record.frames])
            s.positives += (labels == 1).sum(0)
            s.known += (labels >= 0).sum(0)
            s.with_landmarks += sum(f.landmarks is not None for f in record.frames)
            for f in record.frames:
                if f.split:
                    out.splits[f.split] = out.splits.get(f.split, 0) + 1
    out.subjects = sorted(by_subject.values(), key=lambda s: s.subject)
    return out
