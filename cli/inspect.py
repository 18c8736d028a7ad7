"""`austack inspect DATASET RAW_DIR`: what a reader finds in a raw distribution."""
from __future__ import annotations

from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.table import Table

from austack.cli._reader_options import reader_option
from austack.cli._store_tables import anomaly_table, percent
from austack.inspect import summarize_raw


@click.command()
@click.argument("dataset")
@click.argument("raw_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--protocol", default=None, metavar="NAME",
              help="Protocol whose AUs and label rule to read with. Default: the dataset's.")
@click.option("--all-anomalies", is_flag=True, default=False, show_default=True,
              help="List every anomaly, not the first 30.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the summary as JSON (for scripts).")
@reader_option
def cli(dataset, raw_dir, protocol, all_anomalies, as_json, reader_options):
    """Summarise a raw distribution: subjects, sessions, frames, label rates, anomalies.

    Reads label and landmark files only (no pixels are decoded). DATASET is a reader name
    (`austack list readers`); RAW_DIR is the distribution's root as the dataset ships it.
    """
    s = summarize_raw(dataset, raw_dir, protocol=protocol, **reader_options)
    if as_json:
        import json

        click.echo(json.dumps(s.to_dict(), indent=2))
        return
    console = Console()
    console.print(f"[bold]{s.dataset}[/] at {s.root}: {len(s.subjects)} subjects, {s.sessions} sessions, "
                  f"{s.frames} labelled frames; labels read with {s.protocol}")
    if s.splits:
        console.print("dataset splits: " + ", ".join(f"{k} {v} frames" for k, v in sorted(s.splits.items())))
    t = Table(title="Subjects", title_justify="left")
    for col in ("subject", "sessions", "frames", "with landmarks"):
        t.add_column(col, justify="left" if col == "subject" else "right")
    for sub in s.subjects:
        t.add_row(sub.subject, str(sub.sessions), str(sub.frames), str(sub.with_landmarks))
    console.print(t)
    console.print("Label rates over known labels (%)", style="bold")
    console.print(_rates_table(s.aus, s.rates(), s.unknown_fraction(), console))
    table = anomaly_table(s.anomalies, limit=10**9 if all_anomalies else 30, root=str(Path(raw_dir).resolve()))
    console.print(table if table is not None else "No anomalies.")


def _rates_table(aus, rates, unknown, console) -> Table:
    """One column per AU where the width holds them all, else one row per AU: never cut."""
    from austack.tables import fits

    wide = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False)
    wide.add_column("", no_wrap=True)
    for au in aus:
        wide.add_column(f"AU{au}", justify="right", no_wrap=True)
    wide.add_row("occurring", *[percent(x) for x in rates])
    wide.add_row("unknown", *[percent(x) for x in unknown])
    if fits(console, wide):
        return wide
    tall = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False)
    for col in ("AU", "occurring", "unknown"):
        tall.add_column(col, justify="left" if col == "AU" else "right", no_wrap=True)
    for au, r, u in zip(aus, rates, unknown):
        tall.add_row(f"AU{au}", percent(r), percent(u))
    return tall
