"""Progress displays for the long commands (prepare, synth, bench, demo): rich columns in a
terminal; `BenchView` also prints a plain line per epoch and per fold, so logs show progress.

Tasks carry a `detail` field (current subject, fold ...) shown after the ETA:
    with make_progress() as p:
        task = p.add_task("prepare", total=n, detail="")
        p.update(task, completed=m, detail="F001")
"""
from __future__ import annotations

from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn
from rich.progress import Progress as RichProgress
from rich.progress import ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text

# A long step's progress callback, for every library function that takes `progress=`:
# (units done, units in all, what is being worked on: a subject, a session).
Progress = Callable[[int, int, str], None]


class RateColumn(ProgressColumn):
    """Items per second, from rich's own moving estimate."""

    def __init__(self, unit: str = "frames"):
        super().__init__(table_column=Column(no_wrap=True))
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        # blank until measured: a bare "?" column reads as an error
        return Text("" if speed is None else f"{speed:,.1f} {self.unit}/s", style="progress.data.speed")


def make_progress(console: Console | None = None, disable: bool | None = None, unit: str = "frames", *,
                  rate: bool = True, elapsed: bool = True) -> RichProgress:
    """A rich Progress with description, bar, M/N, rate, elapsed, ETA and the task's `detail`.

    `disable=None` shows it only when the console is a terminal, so logs and CI stay clean.
    Every text column keeps to one line; the bar alone shrinks to what the width leaves, so the
    line fits an 80-column terminal instead of wrapping "frames/s" onto a second line.
    rate / elapsed: leave those columns out (bench's detail says images/s already).
    """
    console = console or Console(stderr=True)
    if disable is None:
        disable = not console.is_terminal
    one_line = lambda: Column(no_wrap=True)   # noqa: E731
    columns = [TextColumn("[bold]{task.description}", table_column=one_line()),
               BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=5)),
               MofNCompleteColumn(table_column=one_line())]
    if rate:
        columns.append(RateColumn(unit))
    if elapsed:
        columns.append(TimeElapsedColumn(table_column=one_line()))
    columns += [TextColumn("ETA", table_column=one_line()), TimeRemainingColumn(table_column=one_line()),
                TextColumn("{task.fields[detail]}", table_column=one_line())]
    return RichProgress(*columns, console=console, disable=disable)


class BenchView:
    """One bar per epoch (steps) with images/s and loss in its detail column, shown from the
    first step; a log line per epoch and per fold, in a terminal and in a log alike."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(log_path=False)
        # no rate column (the detail says img/s) and no elapsed one: the line fits 80 columns
        self.progress = make_progress(self.console, unit="steps", rate=False, elapsed=False)
        self.task = None

    def __enter__(self) -> "BenchView":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, ev) -> None:
        if ev.kind == "fold":
            desc = f"fold {ev.fold} train epoch 1/{ev.epochs}"
            if self.task is None:
                self.task = self.progress.add_task(desc, total=None, detail="starting")
            self.progress.update(self.task, description=desc, completed=0, total=None, detail="starting")
        elif ev.kind == "step":
            desc = f"fold {ev.fold} {ev.phase} epoch {ev.epoch}/{ev.epochs}"
            detail = f"{ev.images_per_s:.0f} img/s  loss {ev.loss:.4f}"
            if self.task is None:
                self.task = self.progress.add_task(desc, total=ev.steps, detail=detail)
            self.progress.update(self.task, description=desc, total=ev.steps, completed=ev.step, detail=detail)
        elif ev.kind == "epoch":
            val = "" if ev.val_f1 is None else f"  val F1 {100 * ev.val_f1:.1f}"
            rate = "" if ev.images_per_s is None else f"  {ev.images_per_s:.0f} img/s"
            self.console.print(f"fold {ev.fold} {ev.phase} epoch {ev.epoch}/{ev.epochs}  "
                               f"loss {ev.loss:.4f}{val}{rate}", markup=False, highlight=False)
        elif ev.kind == "fold_done" and ev.row.status == "ok":
            self.console.print(f"fold {ev.fold}: test F1 {100 * ev.row.f1_mean:.1f} (epoch {ev.row.best_epoch} "
                               f"chosen on val, val F1 {100 * ev.row.val_f1_mean:.1f})", markup=False)
