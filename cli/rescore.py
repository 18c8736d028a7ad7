"""`austack rescore RUN_DIR`: a run's metrics recomputed from its stored predictions."""
from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"max_content_width": 80})
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--boot", type=click.IntRange(100), default=2000, show_default=True,
              help="Bootstrap draws over test subjects for the 95% intervals.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default="results.sqlite",
              show_default=True, help="Results database whose recorded sha256 of each predictions file is "
                                      "checked (skipped when the file does not exist).")
def cli(run_dir, boot, as_json, db_path):
    """Recompute test F1 from RUN_DIR's predictions.npz files, without retraining.

    RUN_DIR is a run dir of `austack bench` (holding fold1/, fold2/ ...) or one fold's dir.
    Each fold is scored with the thresholds it applied; the interval is a 95% bootstrap
    over test subjects.
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from austack.results.rescore import rescore

    r = rescore(run_dir, n_boot=boot, db=db_path)
    if as_json:
        click.echo(json.dumps({"aus": r.aus, "folds": [{"fold": f.fold, "f1": f.f1, "f1_mean": f.f1_mean,
                                                         "thresholds": f.thresholds} for f in r.folds],
                               "interval": r.interval.to_dict()}, indent=1))
        return
    table = Table(title=f"test F1 (%) from {run_dir.name}")
    table.add_column("fold", justify="right")
    table.add_column("Avg F1", justify="right")
    table.add_column("thresholds", justify="left")
    for f in r.folds:
        t = sorted(set(round(x, 3) for x in f.thresholds))
        table.add_row(str(f.fold), f"{100 * f.f1_mean:.1f}", "0.5" if t == [0.5] else "per AU (val)")
    i = r.interval.mean_f1
    table.add_section()
    table.add_row("mean", f"{100 * i.estimate:.1f}", f"95% CI {100 * i.low:.1f} to {100 * i.high:.1f} "
                                                    f"({r.interval.n_subjects} subjects)")
    Console().print(table)
    if r.interval.flag:
        click.echo(f"note: the interval is flagged: {r.interval.flag}")
