"""`austack score STORE PRED.csv...`: another tool's per-frame AU output on the store's folds."""
from __future__ import annotations

import json
from pathlib import Path

import click

TOOL_NAMES = ("austack", "py-feat", "openface2", "libreface")


def _folds(value: str) -> list[int] | None:
    if value == "all":
        return None
    try:
        return [int(value)]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a fold number or 'all'", param_hint="--fold") from None


@click.command(context_settings={"max_content_width": 80})
@click.argument("store", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("csvs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fold", "fold", default="all", show_default=True, help="A fold number, or all.")
@click.option("--tool", type=click.Choice(TOOL_NAMES), default=None,
              help="The CSVs' column style; default: detected from each header.")
@click.option("--tool-version", default=None, help="The tool's version, recorded with --db.")
@click.option("--raw", "raw_root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Raw dataset root that the CSVs' paths and per-sequence frame order refer to "
                   "(default: the root the store was prepared from).")
@click.option("--frame-base", type=click.IntRange(0, 1), default=None,
              help="Number of a sequence's first frame in the CSVs (default: the tool's own: "
                   "OpenFace 1, the others 0).")
@click.option("--missing", type=click.Choice(("skip", "negative")), default="skip", show_default=True,
              help="Test frames without a prediction (missing, or no face found): leave them out "
                   "(counted), or score them as predicted inactive.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Record one external row per fold in this results database.")
@click.option("--boot", type=click.IntRange(100), default=2000, show_default=True,
              help="Bootstrap draws over test subjects for the 95% intervals.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def cli(store, csvs, fold, tool, tool_version, raw_root, frame_base, missing, db, boot, as_json):
    """Score per-frame AU CSVs of austack, py-feat, OpenFace 2 or LibreFace on STORE.

    Rows are matched to stored frames by their image or video path, or, for per-sequence
    CSVs (OpenFace), by the CSV's name and frame number in the raw frame order. Unmatched
    rows, frames without a face and test frames no row covers are counted and shown. Only
    the AUs both sides have are scored, with austack's F1 and a 95% bootstrap over test
    subjects per fold.
    """
    from rich.console import Console
    from rich.table import Table

    from austack.results.external import record
    from austack.scoring import score

    report = score(store, list(csvs), folds=_folds(fold), tool=tool, tool_version=tool_version, raw_root=raw_root,
                   frame_base=frame_base, missing=missing, n_boot=boot)
    doc = report.to_dict()
    if db is not None:
        doc["db"] = {"path": str(db.resolve()), "rows": [{"id": i, "inserted": new} for i, new in record(report, db)]}
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return
    console = Console(width=80)
    r = doc["rows"]
    console.print(f"{doc['tool']} on {doc['dataset']} ({doc['protocol']})", markup=False)
    console.print(f"rows: {r['total']}, matched {r['matched']}, unmatched {r['unmatched']}, no face "
                  f"{r['no_face']}", markup=False)
    for why, n in doc["unmatched_reasons"].items():
        console.print(f"  unmatched ({n}): {why}", markup=False)
    table = Table(title=f"test F1 (%), missing frames: {missing}")
    for name in ("fold", "frames", "scored", "missing", "no face", "Avg F1", "95% CI"):
        table.add_column(name, justify="right", no_wrap=True)
    for f in doc["folds"]:
        i = f["interval"].get("mean_f1")
        table.add_row(str(f["fold"]), str(f["test_frames"]), str(f["scored_frames"]), str(f["missing_frames"]),
                      str(f["no_face_frames"]), f"{100 * f['f1_mean']:.1f}",
                      f"{100 * i['low']:.1f}-{100 * i['high']:.1f}" if i else "n/a")
    console.print(table)
    cells = [f"AU{a} {100 * v:5.1f}" for a, v in zip(doc["aus"], doc["mean"]["f1"])]
    console.print("F1 % per AU, mean over folds:", markup=False)
    for start in range(0, len(cells), 6):
        console.print("  " + "  ".join(cells[start:start + 6]), markup=False)
    if doc["store_only_aus"]:
        console.print(f"not scored (the tool has no column): AU {', '.join(map(str, doc['store_only_aus']))}")
    if "db" in doc:
        new = sum(x["inserted"] for x in doc["db"]["rows"])
        console.print(f"recorded {new} new external row(s) in {doc['db']['path']}", markup=False)
