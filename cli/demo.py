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
@click.option("--threads", type=click.IntRange(1), default=None, metavar="N",
              help="torch CPU threads for training (on shared cores 1 can be fastest; the last "
                   "digits can depend on it, see the README).  [default: torch's]")
def cli(out, quick, workers, threads):
    """Run the whole pipeline on synthetic BP4D and print a leaderboard.

    \b
    Stages: synth (BP4D raw layout) -> prepare (aligned HDF5 store) -> bench
    with the demo-wce and demo-aunce recipes on every fold -> leaderboard,
    beside the F1 of the predictor that calls every AU active, on the same
    test folds. Finished stages are reused when you run it again with the
    same --out. Progress: one line per stage and per epoch, with the whole
    demo's ETA, in a log too. The package versions come first, with whether
    they are constraints/reproduce.txt's (then expect the README's digits).
    """
    from austack.demo import run_demo

    result = run_demo(out, quick=quick, workers=workers, threads=threads)
    if not any(r.status == "ok" for r in result.rows):
        raise click.ClickException(f"every fold of every demo recipe failed; see {result.db}")
