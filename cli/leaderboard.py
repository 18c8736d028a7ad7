"""`austack leaderboard`: recorded results per dataset, beside the published numbers."""
from __future__ import annotations

from pathlib import Path

import click

from austack.results.leaderboard import FORMATS, leaderboards_from_db, print_rich, render


@click.command()
@click.option("--dataset", "-d", metavar="NAME", default=None,
              help="Only the boards of this dataset (bp4d, disfa, ...; with the cross-dataset "
                   "boards scored on it), or one cross-dataset board: bp4d->disfa. Default: all.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default="results.sqlite",
              show_default=True, help="Results database written by `austack bench`.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table (fits the terminal), or the wide csv, md (markdown), latex or json, "
                   "one column per AU; all from the same rows.")
@click.option("--ci/--no-ci", default=False, show_default=True,
              help="Compute the 95% CI of each row's Avg F1 (and per AU in json) by a bootstrap over "
                   "test subjects, from the stored predictions. json always has them.")
@click.option("--per-au", is_flag=True, default=False, show_default=True,
              help="Table format: also print F1 per AU, in as many tables as the width needs.")
@click.option("--published/--no-published", default=True, show_default=True,
              help="Show the published reference rows, marked 'published' with their citation.")
@click.option("--all", "show_all", is_flag=True, default=False, show_default=True,
              help="Also show non-comparable rows (debug subsampling) and the published ablation "
                   "and hyperparameter tables.")
@click.option("--other-boards", is_flag=True, default=False, show_default=True,
              help="Also show the boards that hold none of the database's rows (other datasets' "
                   "published numbers). Default: only the boards with its rows, each beside the "
                   "published rows of its dataset and protocol.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write to this file instead of the terminal (table format: 80 columns wide).")
def cli(dataset, db_path, fmt, ci, per_au, published, show_all, other_boards, output):
    """Avg F1 of recorded results (mean ± std over folds) beside the published numbers.

    \b
    A measured row is one experiment: one dataset, protocol, store identity and
    config hash, over its folds and seeds (counted in Folds and Seeds); nothing
    else is ever averaged. Results on synthetic stores are listed under their
    own heading, never beside published rows. How: how each number was made
    (selection split, threshold rule, init; legend under the board).
    Cross-dataset rows (bench --test-data) get a board per source -> target
    over the shared AUs, beside the published cross-dataset numbers. See
    docs/results.md and docs/cross-dataset.md.
    """
    db_path = db_path.expanduser().resolve()
    if not db_path.exists():
        if not published:
            raise click.ClickException(f"no results database at {db_path}; run `austack bench` first, "
                                       f"or pass --db with the file it wrote")
        click.echo(f"note: no results database at {db_path}; showing published numbers only", err=True)
    boards = leaderboards_from_db(db_path if db_path.exists() else None, dataset, published=published,
                                  show_all=show_all, ci=ci or fmt == "json", other_boards=other_boards)
    if not any(b.rows for b in boards):
        _nothing_to_show(boards, dataset, db_path, published)
    if output is not None:
        output.expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(boards, fmt, **({"per_au": per_au} if fmt == "table" else {})), encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    elif fmt == "table":
        print_rich(boards, per_au=per_au)
    else:
        click.echo(render(boards, fmt), nl=False)


def _nothing_to_show(boards, dataset, db_path, published) -> None:
    """No row to show: say why, naming the failed runs when there are some."""
    notes = [line for b in boards for line in b.notes]
    where = f" for dataset {dataset!r}" if dataset else ""
    if notes:
        click.echo("\n".join(notes), err=True)
        raise click.ClickException(f"{db_path} holds no finished result{where}, only the failed or hidden "
                                   f"runs listed above")
    raise click.ClickException(f"nothing to show{where} in {db_path}"
                               + ("" if published else " (published rows are off)"))
