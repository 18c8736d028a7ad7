"""`austack demo`: synthetic BP4D -> prepare -> bench (two demo recipes) -> leaderboard."""
from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="demo-out", show_default=True,
              help="Folder for the raw data, the store, the runs and results.sqlite; a rerun reuses it.")
@click.option("--quick", is_flag=True, default=False, show_default=True,
              help="Fewer frames and one epoch each: a fast check that the install works; its "
                   "numbers only show that the pipeline runs.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Processes for prepare.")
def cli(out, quick, workers):
    """Run the whole pipeline on synthetic BP4D and print a leaderboard.

    \b
    Stages: synth (BP4D raw layout) -> prepare (aligned HDF5 store) -> bench
    with the demo-wce and demo-aunce recipes on every fold -> leaderboard,
    beside the F1 of the predictor that calls every AU active, on the same
    test folds. Finished stages are reused when you run it again with the
    same --out. Progress: one line per stage and per epoch, in a log too.
    """
    from austack.demo import run_demo

    result = run_demo(out, quick=quick, workers=workers)
    if not any(r.status == "ok" for r in result.rows):
        raise click.ClickException(f"every fold of every demo recipe failed; see {result.db}")
