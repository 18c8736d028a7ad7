"""`austack leaderboard`: recorded results per dataset, beside the published numbers."""
from __future__ import annotations

from pathlib import Path

import click

from austack.results.leaderboard import FORMATS, leaderboards_from_db, print_rich, render


@click.command()
@click.option("--dataset", "-d", metavar="NAME", help="Only this dataset (bp4d, disfa, ...). Default: every dataset.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default="results.sqlite",
              show_default=True, help="Results database written by `austack bench`.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table (rich), csv, md (markdown), latex or json; all from the same rows.")
@click.option("--published/--no-published", default=True, show_default=True,
              help="Show the published reference rows, marked 'published' with their citation.")
@click.option("--all", "show_all", is_flag=True,
              help="Also show non-comparable rows (debug subsampling) and the published ablation and "
                   "hyperparameter tables.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write to this file instead of the terminal.")
def cli(dataset, db_path, fmt, published, show_all, output):
    """Per-AU F1 of recorded results (mean ± std over folds) beside the published numbers.

    \b
    Measured rows are grouped by backbone, loss, loss options, weights, epochs and protocol
    hash; rows whose protocol has changed since, or that miss folds, are marked in Notes.
    """
    db_path = db_path.expanduser().resolve()
    if not db_path.exists():
        if not published:
            raise click.ClickException(f"no results database at {db_path}; run `austack bench` first, "
                                       f"or pass --db with the file it wrote")
        click.echo(f"note: no results database at {db_path}; showing published numbers only", err=True)
    boards = leaderboards_from_db(db_path if db_path.exists() else None, dataset,
                                  published=published, show_all=show_all)
    if not any(b.rows for b in boards):
        raise click.ClickException(f"nothing to show{f' for dataset {dataset!r}' if dataset else ''} "
                                   f"in {db_path}" + ("" if published else " (published rows are off)"))
    if output is not None:
        output.expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(boards, fmt), encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    elif fmt == "table":
        print_rich(boards)
    else:
        click.echo(render(boards, fmt), nl=False)
