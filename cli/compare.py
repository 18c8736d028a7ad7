"""`austack compare A B`: the paired difference in mean F1 of two recorded results."""
from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"max_content_width": 80})
@click.argument("a")
@click.argument("b")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default="results.sqlite",
              show_default=True, help="Results database written by `austack bench`.")
@click.option("--boot", type=click.IntRange(100), default=2000, show_default=True,
              help="Paired bootstrap draws over test subjects.")
@click.option("--on", metavar="NAME", default=None,
              help="Where A and B were both scored on several stores (cross-dataset rows): the "
                   "one to compare on, e.g. disfa, or bp4d->disfa:all.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def cli(a, b, db_path, boot, on, as_json):
    """Is A better than B? Mean F1 of A minus B, paired on the same test subjects.

    A and B are config hashes or unique prefixes of them (all their folds and seeds;
    `austack leaderboard --format json` lists them), or row ids written #N (#7 is row 7;
    7 is a hash prefix). Both must come from the same store and folds. The 95% interval
    and the two-sided p-value come from a paired bootstrap over test subjects.
    """
    import json

    from austack.results.db import ResultsDB
    from austack.results.rescore import compare

    with ResultsDB(db_path, create=False) as db:
        c = compare(db, a, b, n_boot=boot, on=on)
    if as_json:
        click.echo(json.dumps({"a": a, "b": b, **c.to_dict()}, indent=1))
        return
    d = c.difference
    click.echo(f"A {a}: mean F1 {100 * c.a_mean_f1:.1f}")
    click.echo(f"B {b}: mean F1 {100 * c.b_mean_f1:.1f}")
    click.echo(f"A - B: {100 * d.estimate:+.1f} points, 95% CI {100 * d.low:+.1f} to {100 * d.high:+.1f}, "
               f"p = {c.p_value:.3g}")
    click.echo(f"(paired bootstrap over {c.n_subjects} test subjects, {c.n_boot} draws)")
    if c.flag:
        click.echo(f"note: the interval is flagged: {c.flag}")
