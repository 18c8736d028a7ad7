"""`austack verify OUT.h5`: check a store's schema, counts, value ranges, digests and identity."""
from __future__ import annotations

import sys

import click
from rich.console import Console

from austack.store import verify


@click.command()
@click.argument("store", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, default=False,
              help="Print the report as JSON (ok, frames, sessions, checked, problems); exit 1 on a problem.")
def cli(store, as_json):
    """Check STORE against its schema, recompute every column's per-session sha256 and its identity."""
    report = verify(store)
    if as_json:
        import json

        click.echo(json.dumps({"path": str(report.path), "ok": report.ok, "frames": report.frames,
                               "sessions": report.sessions, "checked": report.checked,
                               "problems": report.problems}, indent=2))
        sys.exit(0 if report.ok else 1)
    console = Console()
    for line in report.checked:
        console.print(f"[green]ok[/]   {line}")
    for line in report.problems:
        console.print(f"[red]FAIL[/] {line}")
    if report.ok:
        console.print(f"[bold green]{report.path}: valid[/] ({report.frames} frames, {report.sessions} sessions)")
    else:
        console.print(f"[bold red]{report.path}: {len(report.problems)} problem(s)[/]")
        sys.exit(1)
