"""What a bench run reports while it runs, to a `progress` callback."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..results.schema import ResultRow


@dataclass
class BenchEvent:
    """kind: "fold" (a fold starts), "step" (a log interval inside an epoch), "epoch" (an epoch
    ended; `val_f1` set when it was scored), "fold_done" (its row is ready, in `row`).
    phase: "train" (the encoder) or "linear" (a linear probe's heads).
    """

    kind: str
    fold: int
    phase: str = "train"
    epoch: int = 0          # 1-based
    epochs: int = 0
    step: int = 0
    steps: int = 0
    loss: float | None = None
    images_per_s: float | None = None
    val_f1: float | None = None
    row: ResultRow | None = None


BenchListener = Callable[[BenchEvent], None]
