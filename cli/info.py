"""`austack info OUT.h5`: a store per subject and per fold, its alignment and provenance."""
from __future__ import annotations

import click
from rich import box
from rich.console import Console
from rich.table import Table

from austack.store import describe_alignment, info
from austack.store import open_store

from ._store_tables import anomaly_table, percent


CAPTION = "AU columns: % of the frames with a known label in which the AU occurs"


def _groups(title: str, unit: str, groups, aus, console) -> list:
    """Counts and AU occurrence per group, whole percents under bare AU numbers; the AU columns
    go into as many tables as the console's width needs, so that every AU shows, uncut."""
    from austack.tables import fit_columns

    groups = list(groups)
    faceless = any(g.faces != g.frames for g in groups)   # else the header line says it once

    def table(columns) -> Table:
        t = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False)
        t.add_column("", no_wrap=True)
        for col in (unit, "frames", "faces")[:3 if faceless else 2]:
            t.add_column(col, justify="right", no_wrap=True)
        for i in columns:
            t.add_column(str(aus[i]), justify="right", no_wrap=True)
        for g in groups:
            counts = (g.units, g.frames, g.faces)[:3 if faceless else 2]
            t.add_row(g.name, *map(str, counts), *(percent(g.rates[i], digits=0) for i in columns))
        return t

    chunks = fit_columns(console, range(len(aus)), table)
    out: list = []
    for k, columns in enumerate(chunks):
        part = f" (AUs {aus[columns[0]]}-{aus[columns[-1]]})" if len(chunks) > 1 else ""
        out += [f"[bold]{title}[/]{part}", table(columns)]
    return out + [CAPTION]


def _provenance(a: dict) -> str:
    """Identity, library versions and whether the source was synthetic (schema 2 stores)."""
    if "identity" not in a:
        return f"schema {a['schema_version']}: no identity or versions recorded (prepare it again)"
    v = a.get("versions", {})
    line = (f"identity {a['identity'][:16]}; opencv {v.get('opencv', '?')}, dlib {v.get('dlib', '?')}, "
            f"h5py {v.get('h5py', '?')}")
    if a.get("source_synthetic"):
        line += f"; synthetic (seed {a['source_synth_seed']}, label noise {a['source_noise']:g})"
    return line


@click.command()
@click.argument("store", type=click.Path(dir_okay=False))
@click.option("--anomalies", "show_all", is_flag=True, default=False, show_default=True, help="List every anomaly, not the first 30.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the summary as JSON (for scripts).")
def cli(store, show_all, as_json):
    """Summarise STORE: frames and AU rates per subject and per fold split; alignment; provenance."""
    s = info(store)
    if as_json:
        import json

        click.echo(json.dumps(s.to_dict(), indent=2, default=str))
        return
    console = Console()
    a = s.attrs
    console.print(f"[bold]{s.path}[/]: {s.dataset}, {s.frames} frames ({s.faces} with a face) in {s.sessions} "
                  f"sessions of {len(s.subjects)} subjects")
    console.print(f"protocol {a['protocol']} (hash {a['protocol_hash']}); "
                  f"alignment {describe_alignment(a['alignment'])}; "
                  f"landmarks {a['landmark_source']}; images {a['image_encoding']}"
                  + (f" q{a['jpeg_quality']}" if a["image_encoding"] == "jpeg" else "")
                  + (f", decoded and warped by {a['pixel_decoder']}" if "pixel_decoder" in a else ""))
    src = a.get("source", {})
    console.print(f"made by austack {a['austack_version']} from {src.get('root', '?')}")
    console.print(_provenance(a))
    for part in _groups("Subjects", "sessions", s.subjects, s.aus, console) + \
            _groups("Folds", "units", s.folds, s.aus, console):
        console.print(part)
    with open_store(store) as st:
        table = anomaly_table(st.anomalies(), limit=10**9 if show_all else 30, root=src.get("root"))
    if table is not None:
        console.print(table)
