"""`austack inspect DATASET RAW_DIR`: what a reader finds in a raw distribution."""
from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from austack.cli._store_tables import anomaly_table, percent
from austack.inspect import summarize_raw


@click.command()
@click.argument("dataset")
@click.argument("raw_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--protocol", default=None, help="Protocol whose AUs and label rule to read with (default: the dataset's).")
@click.option("--all-anomalies", is_flag=True, help="List every anomaly, not the first 30.")
def cli(dataset, raw_dir, protocol, all_anomalies):
    """Summarise a raw distribution: subjects, sessions, frames, label rates, anomalies.

    Reads label and landmark files only (no pixels are decoded). DATASET is a reader name
    (`austack list readers`); RAW_DIR is the distribution's root as the dataset ships it.
    """
    console = Console()
    s = summarize_raw(dataset, raw_dir, protocol=protocol)
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
    rates, unknown = s.rates(), s.unknown_fraction()
    r = Table(title="Label rates over known labels (%)", title_justify="left")
    r.add_column("")
    for au in s.aus:
        r.add_column(f"AU{au}", justify="right")
    r.add_row("occurring", *[percent(x) for x in rates])
    r.add_row("unknown", *[percent(x) for x in unknown])
    console.print(r)
    table = anomaly_table(s.anomalies, limit=10**9 if all_anomalies else 30, root=str(Path(raw_dir).resolve()))
    console.print(table if table is not None else "No anomalies.")
