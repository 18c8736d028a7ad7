"""`run_sweep`: a grid over any recipe setting or loss option, every point recorded.

`--param loss.beta_neg=0.2,0.4,0.8` sweeps a loss option, `--param lr=1e-3,3e-3` a
`BenchConfig` field. Each point is its own config hash in the results database; values are
read by `runs.config.parse_value` (1e-3 and 0.2 numbers, true a boolean, cosine a string). Every point is built
and checked before the first one trains.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..runs.config import parse_value
from ..errors import ConfigError, UnknownNameError, did_you_mean

# Fields that say where or how a run goes, or are the grid itself: not sweepable.
NOT_SWEPT = ("backbone", "data", "folds", "seed", "device", "workers", "out_dir", "db", "recipe", "compile",
             "threads")


@dataclass(frozen=True)
class Param:
    key: str                   # "lr" or "loss.beta_neg"
    values: tuple[Any, ...]

    @property
    def is_loss_option(self) -> bool:
        return self.key.startswith("loss.")


@dataclass
class Point:
    values: dict[str, Any]     # key -> value at this point
    cfg: Any                   # BenchConfig
    config_hash: str = ""
    rows: list = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items())


@dataclass
class Sweep:
    recipe: str
    params: list[Param]
    points: list[Point]
    out: Path
    seconds: float
    started: str


scalar = parse_value   # a command-line value: int, then float, else YAML


def parse_param(text: str) -> Param:
    key, sep, rest = text.partition("=")
    key = key.strip()
    values = tuple(scalar(v.strip()) for v in rest.split(",") if v.strip()) if sep else ()
    if not key or not values:
        raise ConfigError(f"--param {text!r}: expected KEY=V1,V2,..., e.g. loss.beta_neg=0.2,0.4,0.8")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"--param {text!r} repeats a value")
    return Param(key, values)


def check_param(p: Param, loss: str) -> None:
    from ..runs.config import BenchConfig
    from ..losses import loss_options

    if p.is_loss_option:
        option, known = p.key[5:], loss_options(loss)
        if option not in known:
            raise UnknownNameError(f"--param {p.key}: {loss} has no option {option!r}"
                                   f"{did_you_mean(option, known)} (options: {', '.join(known)})")
        return
    names = [f.name for f in fields(BenchConfig) if f.name not in NOT_SWEPT]
    if p.key in NOT_SWEPT:
        raise ConfigError(f"--param {p.key}: not a setting that changes results; use --seeds or --folds "
                          f"for seeds and folds, and the recipe for the backbone")
    if p.key not in names:
        raise UnknownNameError(f"--param {p.key}: unknown setting{did_you_mean(p.key, names)}; loss "
                               f"options are written loss.KEY")


def build_points(recipe: dict[str, Any], params: Sequence[Param], base: dict[str, Any]) -> list[Point]:
    """Every point's BenchConfig, built (and so checked) now, losses included."""
    from ..runs.config import BenchConfig
    from ..losses import create_loss

    settings = {**recipe, **base}
    if not settings.get("loss"):
        raise ConfigError("the recipe names no loss; a sweep needs a recipe with backbone and loss")
    keys = [p.key for p in params]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"a setting is swept twice ({', '.join(keys)}); give each --param once")
    for p in params:
        check_param(p, settings["loss"])
    points = []
    for combo in itertools.product(*(p.values for p in params)):
        d = {**settings, "loss_options": dict(settings.get("loss_options") or {})}
        for p, v in zip(params, combo):
            if p.is_loss_option:
                d["loss_options"][p.key[5:]] = v
            else:
                d[p.key] = v
        cfg = BenchConfig.from_dict(d)
        create_loss(cfg.loss, **cfg.loss_options)
        points.append(Point(dict(zip(keys, combo)), cfg))
    return points


def run_sweep(recipe: str, params: Sequence[Param], *, data: str, out: str | Path, seeds: int = 1,
              folds: Sequence[int] = (), overrides: dict[str, Any] | None = None, db: str | None = None,
              threads: int | None = None, console=None, run: Callable | None = None,
              dask: str | None = None) -> Sweep:
    """Run (or resume) every point; rows go to `db` (default `<out>/results.sqlite`). `dask`:
    every (point, seed, fold) one task on that cluster (`engine.distributed_tasks`)."""
    from rich.console import Console

    from ..runs.recipes import load_recipe
    from .report import EngineLog, fold_outcome, now, run_grid

    out = Path(out).expanduser().resolve()
    base = {**(overrides or {}), "data": str(data), "folds": tuple(folds), "out_dir": str(out / "runs"),
            "db": str(db or out / "results.sqlite")}
    points = build_points(load_recipe(recipe), params, base)
    console = console or Console(stderr=True)
    if run is None:
        from ..engine.record import run_and_record as run
    out.mkdir(parents=True, exist_ok=True)
    started, t0 = now(), time.perf_counter()
    jobs = [(i, point, seed) for i, point in enumerate(points, 1) for seed in range(seeds)]
    with EngineLog(out, threads) as log:
        outcomes = run_grid([replace(p.cfg, seed=seed) for _, p, seed in jobs], run, log, console, dask, threads)
        for (i, point, seed), outcome in zip(jobs, outcomes):
            point.rows += [r for r in outcome.rows if r is not None]
            point.ids += [n for n in outcome.ids if n >= 0]   # -1: a task lost on Dask
            point.config_hash = next((r.config_hash for r in point.rows if r.config_hash), point.config_hash)
            console.print(f"[{i}/{len(points)}] {point.label}, seed {seed}: {fold_outcome(outcome.rows)}",
                          markup=False, highlight=False)
    return Sweep(recipe, list(params), points, out, time.perf_counter() - t0, started)
