"""The contract between the synthetic face renderer and the per-dataset layout writers.

The driver (`austack.synth.synthesize`) plans subjects and sessions, renders frames lazily and
hands each layout writer a list of `SynthSession`s. A writer serialises them in the dataset's
exact raw layout, with its irregularities, and returns the `Truth` that the dataset's reader
must read back (tests compare the two).

Label noise is applied by the driver before writing: `written` holds the intensities that go
into label files (flips are made at the protocol's positive threshold), `clean` the ones the
images were rendered from. Images always follow `clean`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterator

import numpy as np

from ...registry import Registry

# Every AU the renderer can show, in this order (columns of `clean` / `written`).
ALL_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26)


@dataclass
class SynthSession:
    subject: str
    session: str
    clean: np.ndarray      # int8 (T, len(ALL_AUS)), intensity 0..5 the frames show
    written: np.ndarray    # int8 (T, len(ALL_AUS)), intensity after label noise
    # Renders the T frames in order: (RGB uint8 HxWx3, 68 landmarks float32 (68, 2), 0-based).
    frames: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]

    @property
    def n_frames(self) -> int:
        return len(self.clean)


@dataclass
class SessionTruth:
    """What a reader must return for one session."""

    subject: str
    session: str
    frames: list[int]                     # native frame numbers the reader yields, in order
    labels: np.ndarray                    # int8 (len(frames), n_protocol_aus), 1/0/-1
    intensities: np.ndarray | None = None  # int8, where the dataset codes intensity
    landmark_points: int | None = None    # 49/66 where landmarks ship, else None
    landmarks_missing: list[int] = field(default_factory=list)  # frames whose landmarks are absent
    split: str | None = None


@dataclass
class Truth:
    sessions: list[SessionTruth]
    # anomalies injected on purpose: (kind, path relative to the root), as the reader reports them
    anomalies: list[tuple[str, str]]


class LayoutWriter:
    """Writes `SynthSession`s in one dataset's raw layout."""

    layout: ClassVar[str]          # registry name, same as the reader's dataset name
    protocol: ClassVar[str]        # protocol whose AUs and label rule the labels follow

    def subject_ids(self, n: int, rng: np.random.Generator) -> list[str]:
        """`n` plausible subject ids, spread over the protocol's folds."""
        raise NotImplementedError

    def session_ids(self, subject: str, n: int) -> list[str]:
        raise NotImplementedError

    def write(self, dest: Path, sessions: list[SynthSession], rng: np.random.Generator) -> Truth:
        raise NotImplementedError


LAYOUTS: Registry[type[LayoutWriter]] = Registry("synthetic layout")
register_layout = LAYOUTS.register
