"""One progress display for the long commands (prepare, synth, bench): rich columns, quiet off a TTY.

Tasks carry a `detail` field (current subject, fold ...) shown after the ETA:
    with make_progress() as p:
        task = p.add_task("prepare", total=n, detail="")
        p.update(task, completed=m, detail="F001")
"""
from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, from rich's own moving estimate."""

    def __init__(self, unit: str = "frames"):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{speed:,.1f} {self.unit}/s", style="progress.data.speed")


def make_progress(console: Console | None = None, disable: bool | None = None, unit: str = "frames") -> Progress:
    """A rich Progress with description, bar, M/N, rate, elapsed, ETA and the task's `detail`.

    `disable=None` shows it only when the console is a terminal, so logs and CI stay clean.
    """
    console = console or Console(stderr=True)
    if disable is None:
        disable = not console.is_terminal
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    TextColumn("{task.fields[detail]}"), console=console, disable=disable)
