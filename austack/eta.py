"""An ETA for a whole multi-stage run (the demo), not just for the stage on screen.

Each stage has a weight: its expected share of the run's time (the demo's come from the
README's timed run). The run's done fraction is the weighted sum of the stages' own fractions;
the time left is the elapsed time scaled by what is left, so a loaded machine, slower than the
one the weights came from, gets a proportionally longer and honest ETA.
"""
from __future__ import annotations

import time
from typing import Callable


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class RunClock:
    def __init__(self, weights: dict[str, float], clock: Callable[[], float] = time.perf_counter):
        self.weights = dict(weights)
        self.done: dict[str, float] = {name: 0.0 for name in weights}
        self.clock = clock
        self.t0 = clock()

    def skip(self, stage: str) -> None:
        """A stage that needs no work this run (reused) takes no share of it."""
        self.weights.pop(stage, None)
        self.done.pop(stage, None)

    def update(self, stage: str, fraction: float) -> None:
        if stage in self.done:
            self.done[stage] = min(max(fraction, self.done[stage]), 1.0)

    def fraction(self) -> float:
        total = sum(self.weights.values())
        return 1.0 if total <= 0 else sum(self.weights[s] * f for s, f in self.done.items()) / total

    def remaining(self) -> float | None:
        """Seconds left, or None before any work has been measured."""
        f = self.fraction()
        if f <= 0:
            return None
        return (self.clock() - self.t0) * (1 - f) / f

    def line(self, name: str = "demo") -> str:
        left = self.remaining()
        eta = "ETA unknown yet" if left is None else f"ETA {format_seconds(left)}"
        return (f"{name}: {100 * self.fraction():.0f}% done, {format_seconds(self.clock() - self.t0)} "
                f"elapsed, {eta}")


def bench_fraction(event, folds: int, state: dict) -> float | None:
    """The done share of a bench stage over `folds` folds from one of its `BenchEvent`s; `state`
    keeps the folds finished so far. The encoder's epochs take the whole share of a fold (a
    linear probe on its frozen encoder is quick)."""
    if event.kind == "fold_done":
        state["done"] = state.get("done", 0) + 1
        return state["done"] / max(folds, 1)
    if event.kind in ("step", "epoch") and event.phase == "train" and event.epochs:
        within = (event.epoch - 1 + (event.step / event.steps if event.kind == "step" and event.steps else 1)) \
            / event.epochs
        return (state.get("done", 0) + min(within, 1.0)) / max(folds, 1)
    return None
