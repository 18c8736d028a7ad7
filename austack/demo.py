"""`austack demo`: the whole pipeline on synthetic BP4D, start to finish, in minutes on a laptop.

synth (BP4D raw layout) -> prepare (align into a store) -> bench (the `demo-wce` and
`demo-aunce` recipes, every fold) -> leaderboard, with the always-active predictor's F1 on the
same test folds printed beside it, so the margin a trained model makes is plain to see.

Every stage records what it did in `<out>/demo-state.json`; a rerun with the same settings
reuses finished stages and resumes an interrupted one (prepare and bench resume by themselves).
A bench stage that finished with failed folds is finished: its error rows are in the database
and the leaderboard counts them; start over with a fresh --out to retry them.
The pipeline's functions come in a `DemoSteps`, so tests can run the demo with fakes.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from .errors import ConfigError
from .results.schema import ResultRow

LAYOUT = "bp4d"
RECIPES = ("demo-wce", "demo-aunce")
STATE_FILE = "demo-state.json"


@dataclass(frozen=True)
class DemoSize:
    """How much synthetic data the demo makes, and how long it trains."""

    name: str
    subjects: int              # dealt over the protocol's parts, so every fold has test subjects
    sessions: int              # per subject
    frames: int                # per session
    size: int                  # synthetic frame size handed to `synthesize`
    bench: dict[str, Any] = field(default_factory=dict)   # recipe overrides (epochs, ...)


# Every BP4D subject id (41), four short sessions each: detectors must generalise across
# people, and measured on this data more subjects and sessions help more than longer sessions.
FULL = DemoSize("full", subjects=41, sessions=4, frames=16, size=256)
QUICK = DemoSize("quick", subjects=6, sessions=2, frames=20, size=256,
                 bench={"epochs": 1, "linear_epochs": 1, "batch_size": 16})

# The demo trains on the CPU at 72 px, so it prepares 72 px faces with a tighter box than the
# standard 2.9 so that the face fills more of them; the recipes use the whole 72 px image
# (measured: random crops cost F1 at this scale, flips do not).
PREPARE = {"size": 72, "box_enlarge": 2.0, "landmarks": "auto"}

# Each stage's share of the demo's time, for the whole-demo ETA: the README's timed run (2 idle
# CPU cores), and a --quick run on the same 2 cores. A loaded machine is slower throughout; the
# ETA scales with what it measures.
STAGE_SECONDS = {"synth": 12, "prepare": 2, "bench demo-wce": 38, "bench demo-aunce": 107}
QUICK_STAGE_SECONDS = {"synth": 5.4, "prepare": 0.6, "bench demo-wce": 9.4, "bench demo-aunce": 6.2}
# torch's default on the 2-core machine that made the README's table: on the CPU the thread
# count changes the last digits (measured: --quick with 1 and 2 threads differ in 2 of 6 folds)
README_THREADS = 2


def _default_synthesize(*args, **kw):
    from .synth import synthesize
    return synthesize(*args, **kw)


def _default_prepare(*args, **kw):
    from .prepare import prepare
    return prepare(*args, **kw)


def _default_run_and_record(*args, **kw):
    from .engine.record import run_and_record
    return run_and_record(*args, **kw)


def _default_load_recipe(name: str) -> dict[str, Any]:
    from .runs.recipes import load_recipe
    return load_recipe(name)


@dataclass
class DemoSteps:
    """The functions the demo calls, in order; tests substitute fakes."""

    synthesize: Callable = _default_synthesize
    prepare: Callable = _default_prepare
    run_and_record: Callable = _default_run_and_record
    load_recipe: Callable[[str], dict[str, Any]] = _default_load_recipe


@dataclass
class StageReport:
    name: str
    seconds: float             # of the run that did the work (a reused stage keeps its first time)
    reused: bool
    detail: str = ""


@dataclass
class DemoResult:
    out: Path
    db: Path
    store: Path
    stages: list[StageReport]
    rows: list[ResultRow]                 # measured rows of this demo's recipes, every fold
    boards: list                          # austack.results.leaderboard.Leaderboard
    trivial_f1: dict[int, float]          # fold -> always-active Avg F1 on its test split, in [0, 1]
    environment: dict = field(default_factory=dict)   # austack.lock.environment_report(): versions vs the lock

    def trivial_f1_mean(self, folds=None) -> float:
        """Mean over `folds` (default: every fold) of the always-active Avg F1."""
        values = [self.trivial_f1[k] for k in (self.trivial_f1 if folds is None else folds)]
        return sum(values) / len(values)


class _State:
    """`demo-state.json`: the settings and outcome of each finished stage, written atomically."""

    def __init__(self, out: Path, size: DemoSize):
        self.path = out / STATE_FILE
        if self.path.exists():
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
            if self.data.get("size") != size.name:
                raise ConfigError(f"{out} holds a {self.data.get('size')!r} demo, not a {size.name!r} one; "
                                  f"pass another --out or delete {out}", path=out)
        else:
            if out.exists() and any(out.iterdir()):
                raise ConfigError(f"{out} is not empty and holds no {STATE_FILE}; the demo only writes into "
                                  f"an empty folder or its own: pass another --out", path=out)
            self.data = {"size": size.name, "stages": {}}
            self.save()

    def done(self, stage: str, settings: dict) -> dict | None:
        """The stage's record if it finished with these settings; None if it never finished.

        A stage that finished with other settings (a changed recipe or austack version) is not
        redone over the old outputs: that is an error, with the way out."""
        entry = self.data["stages"].get(stage)
        if entry is None:
            return None
        if entry["settings"] != settings:
            raise ConfigError(f"the demo in {self.path.parent} ran stage {stage!r} with other settings "
                              f"(was {json.dumps(entry['settings'], sort_keys=True)}); delete that folder or "
                              f"pass another --out", path=self.path)
        return entry

    def finish(self, stage: str, settings: dict, seconds: float, **outcome) -> None:
        self.data["stages"][stage] = {"settings": settings, "seconds": seconds, **outcome}
        self.save()

    def save(self) -> None:
        from .fileio import atomic_write_text

        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.data, indent=2, sort_keys=True))


class _Stages:
    """Runs the demo's stages in order: a finished stage (same settings) is reused, not redone."""

    def __init__(self, state: _State, console: Console, total: int, clock=None):
        from .eta import RunClock

        self.state, self.console, self.total = state, console, total
        self.clock = clock or RunClock(STAGE_SECONDS)
        self.reports: list[StageReport] = []

    def eta(self) -> str:
        """The whole demo's share done and time left, for the end of a progress line."""
        from .eta import format_seconds

        left = self.clock.remaining()
        return f"demo {100 * self.clock.fraction():.0f}%, ETA " + ("?" if left is None else format_seconds(left))

    def say(self, text: str, style: str | None = None) -> None:   # paths and messages are not markup
        self.console.print(text, style=style, markup=False, highlight=False)

    def reporter(self, name: str, unit: str) -> Callable:
        """A progress callback (done, total, ...) that says a plain line at each quarter, so a
        log shows a long stage moving as a terminal does."""
        said = set()

        def report(done: int, total: int, *_) -> None:
            self.clock.update(name, done / max(total, 1))
            quarter = 4 * done // max(total, 1)
            if 0 < quarter < 4 and quarter not in said:
                said.add(quarter)
                self.say(f"      {name}: {done} of {total} {unit} ({self.eta()})")
        return report

    def run(self, name: str, settings: dict, work: Callable[[], dict], detail: Callable[[dict], str]) -> dict:
        number = len(self.reports) + 1
        entry = self.state.done(name, settings)
        if entry is not None:
            self.clock.skip(name)
            report = StageReport(name, entry["seconds"], True, detail(entry))
            self.say(f"[{number}/{self.total}] {name}: reused ({report.detail}; took {report.seconds:.1f} s)")
        else:
            self.say(f"[{number}/{self.total}] {name} ...")
            t0 = time.perf_counter()
            outcome = work()
            seconds = time.perf_counter() - t0
            self.clock.update(name, 1.0)
            self.state.finish(name, settings, seconds, **outcome)
            entry = self.state.done(name, settings)
            report = StageReport(name, seconds, False, detail(entry))
            self.say(f"[{number}/{self.total}] {name}: done in {seconds:.1f} s ({report.detail})")
            if self.clock.fraction() < 1:
                self.say(f"      {self.eta()}")
        self.reports.append(report)
        return entry


def run_demo(out: str | os.PathLike = "demo-out", quick: bool = False, *, console: Console | None = None,
             steps: DemoSteps | None = None, workers: int = 2, threads: int | None = None) -> DemoResult:
    """Run (or resume) the demo in `out`; returns what it measured. Prints each stage with its time,
    the package versions first (and whether they are the lock's), and the whole demo's ETA.
    `threads`: torch CPU threads for training (None: torch's default); recorded in each row."""
    from .lock import describe, environment_report

    size = QUICK if quick else FULL
    steps = steps or DemoSteps()
    console = console or Console()
    if quick:
        say_quick(console)
    import torch

    environment = environment_report()
    environment["torch_threads"] = threads or torch.get_num_threads()
    expect = "" if quick else f"expect the README's table to the digit (its run: {README_THREADS} threads)"
    for line in describe(environment, expect) + [f"training on {environment['torch_threads']} torch CPU "
                                                 f"thread(s) (--threads N; the last digits depend on it)"]:
        console.print(line, markup=False, highlight=False)
    out = Path(out).expanduser().resolve()
    state = _State(out, size)
    state.data["environment"] = environment       # the last run's versions, beside its stages
    state.save()
    from .eta import RunClock

    stages = _Stages(state, console, 3 + len(RECIPES), RunClock(QUICK_STAGE_SECONDS if quick else STAGE_SECONDS))
    raw, store, db_path = out / "raw" / LAYOUT, out / f"{LAYOUT}.h5", out / "results.sqlite"
    synth_settings = _synth_stage(stages, steps, size, raw)
    prepare_settings = _prepare_stage(stages, steps, raw, store, synth_settings, workers)
    rows: list[ResultRow] = []
    for name in RECIPES:
        cfg = _bench_config(steps.load_recipe(name), size, store, out, db_path, threads)
        rows += _bench_stage(stages, steps, cfg, prepare_settings, db_path)
    t0 = time.perf_counter()
    from .scoring.baselines import trivial_all_active_f1

    trivial = trivial_all_active_f1(store)
    boards = _leaderboard(db_path)
    stages.reports.append(StageReport("leaderboard", time.perf_counter() - t0, False, f"from {db_path}"))
    stages.say(f"[{stages.total}/{stages.total}] leaderboard: done in {stages.reports[-1].seconds:.1f} s")
    result = DemoResult(out, db_path, store, stages.reports, rows, boards, trivial, environment)
    print_summary(result, console)
    return result


def _synth_stage(stages: _Stages, steps: DemoSteps, size: DemoSize, raw: Path) -> dict:
    settings = {"layout": LAYOUT, "subjects": size.subjects, "sessions": size.sessions,
                "frames": size.frames, "size": size.size, "seed": 0}

    def synth() -> dict:
        if raw.exists():            # left by an interrupted run of this demo: start that stage over
            shutil.rmtree(raw)
        raw.parent.mkdir(parents=True, exist_ok=True)
        steps.synthesize(raw, LAYOUT, **{k: v for k, v in settings.items() if k != "layout"},
                         progress=stages.reporter("synth", "frames rendered"))
        return {"frames": size.subjects * size.sessions * size.frames}

    stages.run("synth", settings, synth,
               lambda e: f"{size.subjects} subjects x {size.sessions} sessions x {size.frames} frames -> {raw}")
    return settings


def _prepare_stage(stages: _Stages, steps: DemoSteps, raw: Path, store: Path, upstream: dict, workers: int) -> dict:
    settings = {"upstream": upstream, **PREPARE}

    def prep() -> dict:
        report = steps.prepare(LAYOUT, raw, store, workers=workers, resume=True, **PREPARE,
                               progress=stages.reporter("prepare", "frames aligned"))
        return {"frames": int(report.frames), "no_face": int(getattr(report, "no_face", 0))}

    stages.run("prepare", settings, prep, lambda e: f"{e['frames']} frames, {e['no_face']} without a face -> {store}")
    return settings


def _bench_stage(stages: _Stages, steps: DemoSteps, cfg, upstream: dict, db_path: Path) -> list[ResultRow]:
    from .progress import BenchView
    from .results.db import ResultsDB

    from .eta import bench_fraction

    name = f"bench {cfg.recipe}"
    folds, seen = len(cfg.folds) or _fold_count(cfg.data), {}

    def bench() -> dict:
        with BenchView(stages.console) as view:
            def progress(ev) -> None:
                view.update(ev)
                fraction = bench_fraction(ev, folds, seen)
                if fraction is not None:
                    stages.clock.update(name, fraction)
                    if ev.kind == "epoch":          # the per-epoch line, then the whole demo's ETA
                        stages.say(f"      {stages.eta()}")
            outcome = steps.run_and_record(cfg, console=stages.console, progress=progress)
        failed = [r for r in outcome.rows if r.status != "ok"]
        for r in failed:
            stages.say(f"{cfg.recipe} fold {r.fold} failed: {r.error}", style="red")
        return {"ids": outcome.ids, "failed": len(failed)}

    # threads changes how fast, not what is trained: a rerun with other --threads reuses the stage
    settings = {"upstream": upstream, "config": {k: v for k, v in cfg.to_dict().items() if k != "threads"}}
    entry = stages.run(name, settings, bench,
                       lambda e: f"{len(e['ids'])} fold row(s), {e['failed']} failed, in {db_path.name}")
    with ResultsDB(db_path) as db:
        wanted = set(entry["ids"])
        return [r for i, r in db.query_with_ids(status=None, include_noncomparable=True) if i in wanted]


def say_quick(console: Console) -> None:
    console.print("--quick: a few frames and one epoch, to show that every stage runs; its F1 "
                  "numbers mean nothing (the full demo's do)", style="yellow", markup=False)


def _bench_config(recipe: dict[str, Any], size: DemoSize, store: Path, out: Path, db_path: Path,
                  threads: int | None = None):
    from .runs.config import BenchConfig

    return BenchConfig.from_dict({**recipe, **size.bench, "data": str(store), "out_dir": str(out / "runs"),
                                  "db": str(db_path), "threads": threads})


def _fold_count(store: str | os.PathLike) -> int:
    from .store import open_store

    with open_store(store) as s:
        return len(s.protocol().folds)


def _leaderboard(db_path: Path) -> list:
    from .results.leaderboard import leaderboards_from_db

    return leaderboards_from_db(db_path, LAYOUT, published=False, show_all=True, ci=True)


def _ran_quick(result: DemoResult) -> bool:
    """Whether `result` came from `--quick` (the demo's state file records its size)."""
    try:
        return json.loads((result.out / STATE_FILE).read_text(encoding="utf-8")).get("size") == QUICK.name
    except (OSError, ValueError):
        return False


def print_summary(result: DemoResult, console: Console) -> None:
    """The leaderboard, each recipe's margin over the always-active predictor, and the stage times;
    after --quick, marked as numbers that only show the pipeline runs."""
    from rich.table import Table
    from rich.text import Text

    from .results.leaderboard import MEASURED, print_rich

    quick = _ran_quick(result)
    mark = "--quick: these numbers only show that the pipeline runs; they are no result"
    if quick:
        console.print(mark, style="yellow", markup=False, highlight=False)
    print_rich(result.boards, console)
    margins = Table(title=Text("Margin over the always-active predictor (same test folds)"
                               + (" (--quick: not a result)" if quick else "")), title_justify="left")
    for col in ("#", "Method", "Avg F1", "always-active", "margin"):
        margins.add_column(col, justify="left" if col == "Method" else "right", no_wrap=col != "Method")
    for board in result.boards:
        for r in board.of_kind(MEASURED):
            trivial = 100 * result.trivial_f1_mean(r.folds)   # over the folds this row has
            avg = "–" if r.avg is None else f"{r.avg:.1f}"
            margin = "–" if r.avg is None else f"{r.avg - trivial:+.1f}"
            margins.add_row(str(r.rank), r.method, avg, f"{trivial:.1f}", margin)
    if margins.row_count:
        console.print(margins)
    else:
        console.print("no recipe finished a fold; the errors are above and in the database", style="red",
                      markup=False)
    folds = ", ".join(f"fold {k} {100 * f:.1f}" for k, f in result.trivial_f1.items())
    total = sum(s.seconds for s in result.stages if not s.reused)
    times = ", ".join(f"{s.name} {'reused' if s.reused else f'{s.seconds:.1f} s'}" for s in result.stages)
    lines = [f"always-active Avg F1 per test fold: {folds} (mean {100 * result.trivial_f1_mean():.1f})",
             f"stages: {times}; this run {total:.1f} s",
             f"results: {result.db} (`austack leaderboard --db {result.db}` shows them beside the "
             f"published numbers)"]
    env = result.environment
    if env.get("lock") is not None:
        lines.append("package versions: the lock's (constraints/reproduce.txt)" if env["matches_lock"] else
                     f"package versions differ from the lock's: {', '.join(env['differs'])} (see the top)")
    for line in lines + ([mark] if quick else []):
        console.print(line, markup=False, highlight=False)


__all__ = ["run_demo", "DemoSteps", "DemoResult", "DemoSize", "FULL", "QUICK", "print_summary"]
