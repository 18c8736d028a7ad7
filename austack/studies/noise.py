"""`run_noise_study`: does a loss resist label noise? Measured where the clean labels are known.

Synthetic BP4D is made once without noise and prepared once. Each (kind, level, loss, seed)
trains on training and validation labels with `level` of them flipped (`BenchConfig
.label_noise`, seeded by seed, fold and split), on every fold, through `run_and_record`; every
test split is scored against the clean labels (the answer) and, reported separately, against
test labels flipped the same way with a recorded seed (`noisy_scoring`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError, UnknownNameError, did_you_mean
from .data import SynthData, ensure_store

KINDS = ("symmetric", "missed")


@dataclass(frozen=True)
class NoiseSize:
    name: str
    data: SynthData
    levels: tuple[float, ...]
    bench: dict[str, Any] = field(default_factory=dict)   # overrides of the demo recipes


# Small enough for CI on 2 CPU cores (about 2 minutes): nine subjects, so each fold tests three.
QUICK = NoiseSize("quick", SynthData(subjects=9, sessions=1, frames=24, synth_size=128, face_size=48),
                  (0.0, 0.2, 0.4), {"epochs": 3, "linear_epochs": 3, "batch_size": 16, "image_size": 48})
# The demo's data and recipes (docs/studies.md gives its time).
FULL = NoiseSize("full", SynthData(subjects=41, sessions=4, frames=16, synth_size=256, face_size=72),
                 (0.0, 0.1, 0.2, 0.3, 0.4))


@dataclass
class Setting:
    """One point of the grid: every seed and fold of it shares a config hash."""

    kind: str
    level: float
    loss: str
    config_hash: str = ""
    rows: list = field(default_factory=list)      # ResultRow, every seed and fold
    ids: list[int] = field(default_factory=list)


@dataclass
class NoiseStudy:
    out: Path
    settings: list[Setting]
    seconds: float
    started: str


def check_grid(levels: Sequence[float], losses: Sequence[str], kinds: Sequence[str], seeds: int) -> None:
    """Every name and number of the grid, checked before anything is made or trained."""
    from ..losses import create_loss, list_losses

    for level in levels:
        if not 0 <= level <= 0.5:
            raise ConfigError(f"noise level {level} is outside [0, 0.5] (0.5 flips labels at random)")
    for kind in kinds:
        if kind not in KINDS:
            raise UnknownNameError(f"unknown noise kind {kind!r}{did_you_mean(kind, KINDS)}; expected "
                                   f"{' or '.join(KINDS)}")
    for loss in losses:
        if loss not in list_losses():
            raise UnknownNameError(f"unknown loss {loss!r}{did_you_mean(loss, list_losses())} "
                                   f"(`austack list losses`)")
        create_loss(loss)
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if not levels or not losses or not kinds:
        raise ConfigError("a noise study needs at least one level, loss and kind")


def grid(levels: Sequence[float], losses: Sequence[str], kinds: Sequence[str]) -> list[Setting]:
    """Level 0 is one setting per loss (no flips: the kind changes nothing), listed under the
    first kind; every other level once per kind."""
    out = [Setting(kinds[0], 0.0, loss) for loss in losses] if 0 in levels else []
    out += [Setting(kind, float(level), loss) for kind in kinds for level in levels if level
            for loss in losses]
    return out


def base_recipe(loss: str) -> dict[str, Any]:
    """The demo recipe of the loss's regime (supervised: demo-wce; else demo-aunce), this loss."""
    from ..runs.recipes import load_recipe
    from ..losses import create_loss

    supervised = create_loss(loss).regime == "supervised"
    recipe = load_recipe("demo-wce" if supervised else "demo-aunce")
    return {**recipe, "loss": loss, "recipe": f"noise-study-{loss}"}


def bench_config(s: Setting, size: NoiseSize, store: Path, out: Path, seed: int, device: str,
                 threads: int | None = None):
    from ..runs.config import BenchConfig

    return BenchConfig.from_dict({**base_recipe(s.loss), **size.bench, "label_noise": s.level,
                                  "label_noise_kind": s.kind, "seed": seed, "data": str(store),
                                  "out_dir": str(out / "runs"), "db": str(out / "results.sqlite"),
                                  "device": device, "threads": threads})


def run_noise_study(out: str | Path, *, quick: bool = False, levels: Sequence[float] | None = None,
                    losses: Sequence[str] = ("wce", "aunce.paper"), kinds: Sequence[str] = KINDS,
                    seeds: int = 1, device: str = "auto", workers: int = 1, threads: int | None = 1,
                    console=None, run: Callable | None = None, dask: str | None = None) -> NoiseStudy:
    """Run (or resume) the grid in `out`; the tables and figure come from `write_noise_outputs`.
    `dask`: every (setting, seed, fold) one task on that cluster (`engine.distributed_tasks`)."""
    from rich.console import Console

    from .report import EngineLog, fold_outcome, now, run_grid

    size = QUICK if quick else FULL
    levels = tuple(size.levels if levels is None else levels)
    check_grid(levels, losses, kinds, seeds)
    if dask:   # a mistyped address fails now, not after the data is made
        from ..prepare.dask_cluster import parse_address
        parse_address(dask)
    console = console or Console(stderr=True)
    say = lambda text: console.print(text, markup=False, highlight=False)
    if run is None:
        from ..engine.record import run_and_record as run
    out = Path(out).expanduser().resolve()
    started, t0 = now(), time.perf_counter()
    store = ensure_store(out, size.data, f"noise-{size.name}", say=say)
    settings = grid(levels, losses, kinds)
    jobs = [(i, s, seed) for i, s in enumerate(settings, 1) for seed in range(seeds)]
    with EngineLog(out, threads) as log:
        cfgs = [bench_config(s, size, store, out, seed, device, threads) for _, s, seed in jobs]
        for (i, s, seed), outcome in zip(jobs, run_grid(cfgs, run, log, console, dask, threads)):
            s.rows += [r for r in outcome.rows if r is not None]
            s.ids += [n for n in outcome.ids if n >= 0]   # -1: a task lost on Dask
            s.config_hash = next((r.config_hash for r in s.rows if r.config_hash), s.config_hash)
            say(f"[{i}/{len(settings)}] {s.loss} {s.kind} {s.level:g} seed {seed}: "
                f"{fold_outcome(outcome.rows)} ({time.perf_counter() - t0:.0f} s)")
    return NoiseStudy(out, settings, time.perf_counter() - t0, started)

