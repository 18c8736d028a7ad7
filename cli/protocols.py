"""`austack protocols [NAME]`: the versioned fold protocols, as rich tables."""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from austack.protocols import list_protocols, load_protocol


def _listing(console: Console) -> None:
    t = Table(title="Fold protocols", title_justify="left")
    for col, kw in (("id", {}), ("dataset", {}), ("AUs", {"justify": "right"}), ("folds", {"justify": "right"}),
                    ("defined by", {}), ("hash", {"no_wrap": True})):
        t.add_column(col, **kw)
    for p in list_protocols():
        t.add_row(p.id, p.dataset, str(len(p.aus)), str(len(p.folds)), p.defined_by, p.hash)
    console.print(t)
    console.print("Show one with [bold]austack protocols show NAME[/] (NAME: an id, a name or a dataset).")


def _show(console: Console, name: str) -> None:
    p = load_protocol(name)
    console.print(f"[bold]{p.id}[/]  {p.title}")
    console.print(f"dataset [bold]{p.dataset}[/], defined by {p.defined_by}, hash [bold]{p.hash}[/] "
                  f"(sha256 {p.full_hash})")
    console.print(f"source: {p.source}")
    rule = (f"occurrence = intensity >= {p.label.positive_min}" if p.label.kind == "intensity"
            else "occurrence code 1 = present, 0 = absent")
    unknown = ", ".join(map(str, p.label.unknown_codes)) or "none"
    console.print(f"AUs ({len(p.aus)}): {' '.join(p.au_names)}")
    console.print(f"labels: {rule}; unknown codes (stored as -1): {unknown}")
    console.print(f"validation: {p.validation_fraction:.0%} of each fold's training units, chosen by a stable hash")
    t = Table(title="Folds", title_justify="left", show_lines=True)
    t.add_column("fold", justify="right")
    t.add_column("train")
    t.add_column("test")
    for f in p.folds:
        if f.train_split or f.test_split:
            t.add_row(str(f.index), f"dataset split {f.train_split}", f"dataset split {f.test_split}")
            continue
        test = [u for part in f.test_parts for u in p.parts[part]]
        train_parts = [q for q in p.parts if q not in f.test_parts]
        train = ([u for q in train_parts for u in p.parts[q]] if train_parts else None)
        t.add_row(str(f.index),
                  f"{', '.join(train_parts)} ({len(train)}): {' '.join(train)}" if train is not None
                  else "every subject not in the test list",
                  f"{', '.join(f.test_parts)} ({len(test)}): {' '.join(test)}")
    console.print(t)


@click.group(invoke_without_command=True)
@click.pass_context
def cli(ctx):
    """List the versioned fold protocols (or `show NAME` for one)."""
    if ctx.invoked_subcommand is None:
        _listing(Console())


@cli.command("show")
@click.argument("name")
def show(name):
    """Show one protocol: AUs, label rule, folds with their train/test subjects, hash."""
    _show(Console(), name)
