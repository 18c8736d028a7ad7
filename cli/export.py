"""`austack export STORE --format FMT --out DIR`: a store as another codebase's training files."""
from __future__ import annotations

import json
from pathlib import Path

import click

FORMAT_NAMES = ("megraphau", "jaanet", "fmae", "csv")


@click.command(context_settings={"max_content_width": 80})
@click.argument("store", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(FORMAT_NAMES),
              help="megraphau (also AUNCE, MDHR), jaanet (PyTorch-JAANet), fmae (FMAE, FMAE-IAT) "
                   "or csv (LibreFace, FG-Net).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write (created; must be empty unless --force).")
@click.option("--fold", "folds", type=int, multiple=True,
              help="Export only this fold (repeatable); default every fold of the protocol.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
@click.option("--json", "as_json", is_flag=True, help="Print the sidecar (austack-export.json) as JSON.")
def cli(store, fmt, out, folds, force, as_json):
    """Write STORE's aligned faces and the list files FMT's own loader reads, per fold.

    Train lists hold every subject outside the fold's test part (these codebases have no
    validation split); OUT/austack-export.json records the store identity, protocol and
    hash, label rule, unknown encoding, camera and crop. docs/export.md has the command to
    train each codebase on the result.
    """
    from austack.export import export

    report = export(store, fmt, out, folds=list(folds) or None, force=force)
    if as_json:
        click.echo(json.dumps(report.doc, indent=1))
        return
    doc = report.doc
    click.echo(f"{fmt}: {doc['store']['frames']} stored frames of {doc['store']['dataset']} "
               f"({doc['protocol']['id']})")
    click.echo(f"into {report.out}")
    for f in doc["folds"]:
        if "stem" in f:
            click.echo(f"  fold {f['fold']} {f['split']:5s} {f['stem']}: {f['frames']} frames, "
                       f"{f['dropped_no_landmarks']} without landmarks dropped")
        else:
            click.echo(f"  fold {f['fold']}: train {f['train_frames']} frames "
                       f"({len(f['train_subjects'])} subjects), test {f['test_frames']} "
                       f"({len(f['test_subjects'])})")
    click.echo(f"unknown labels written as {doc['unknown_labels']}")
    click.echo(f"sidecar: {report.sidecar}")
