"""`austack verify OUT.h5`: check a store's schema, counts, value ranges, digests and identity."""
from __future__ import annotations

import sys

import click
from rich.console import Console

from austack.store import verify


@click.command()
@click.argument("store", type=click.Path(dir_okay=False))
def cli(store):
    """Check STORE against its schema, recompute every column's per-session sha256 and its identity."""
    console = Console()
    report = verify(store)
    for line in report.checked:
        console.print(f"[green]ok[/]   {line}")
    for line in report.problems:
        console.print(f"[red]FAIL[/] {line}")
    if report.ok:
        console.print(f"[bold green]{report.path}: valid[/] ({report.frames} frames, {report.sessions} sessions)")
    else:
        console.print(f"[bold red]{report.path}: {len(report.problems)} problem(s)[/]")
        sys.exit(1)
