"""`austack study noise|sweep`: grids of recorded runs, answered as tables and pictures."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click


def _floats(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers, e.g. 0,0.2,0.4") from None


def _names(ctx, param, value):
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _command_line() -> str:
    return "austack " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "austack"


@click.group(context_settings={"max_content_width": 80})
def cli():
    """Studies: label noise on synthetic data, and sweeps over any setting."""


@cli.command(context_settings={"max_content_width": 80})
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Study folder: data, runs, results.sqlite, CSVs, figure, README.md.")
@click.option("--quick", is_flag=True, help="Tiny data and 3 epochs: minutes on 2 CPU cores.")
@click.option("--levels", callback=_floats, help="Noise levels.  [default: 0,0.1,0.2,0.3,0.4; "
                                                 "--quick: 0,0.2,0.4]")
@click.option("--losses", default="wce,aunce.paper", show_default=True, callback=_names,
              help="Losses (`austack list losses`).")
@click.option("--kinds", default="symmetric,missed", show_default=True, callback=_names,
              help="symmetric: any label flips; missed: active labels become inactive.")
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True, help="Seeds 0..N-1.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Processes for prepare.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="torch CPU threads (tiny encoders: one is fastest on shared cores).")
@click.option("--figure", type=click.Path(dir_okay=False, path_type=Path),
              help="Also copy the PNG here (e.g. docs/img/noise-quick.png).")
@click.option("--dask", metavar="local[:N]|ADDRESS",
              help="Every (setting, seed, fold) one task on a Dask cluster: local:N or a "
                   "scheduler address (docs/scale-out.md).")
def noise(out, quick, levels, losses, kinds, seeds, device, workers, threads, figure, dask):
    """Does a loss resist label noise? Train on noisy labels, test on clean ones.

    \b
    Synthesises BP4D once (no noise) and prepares it once; then for each kind,
    level, loss and seed, flips that share of the training and validation labels
    and trains on every fold. Test splits are scored against the clean labels and,
    separately, against test labels flipped the same way. Writes results.csv,
    summary.csv (95% CIs over test subjects), noise.png/.svg and README.md into
    --out. Rerunning resumes: folds already recorded are reused.
    """
    from austack.studies.noise import run_noise_study
    from austack.studies.noise_report import write_noise_outputs

    study = run_noise_study(out, quick=quick, levels=levels, losses=losses, kinds=kinds, seeds=seeds,
                            device=device, workers=workers, threads=threads, dask=dask)
    files = write_noise_outputs(study, [_command_line()], quick=quick, figure=figure)
    _echo_drops(study.out / "drops.csv")
    click.echo(f"study done in {study.seconds:.0f} s; wrote:")
    for f in files:
        click.echo(f"  {f}")


def _echo_drops(path) -> None:
    """Per level, each loss's drop from its own clean F1 and the drop difference, one line each."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            what = f"{r['loss']} drop" if r["what"] == "drop" else f"{r['loss']} - {r['versus']} drops"
            line = (f"{r['kind']} {float(r['level']):g}: {what} {float(r['points']):+.1f} "
                    f"({float(r['low']):+.1f} to {float(r['high']):+.1f})")
            click.echo(line + (f", {r['reading']}" if r["reading"] else "") + ("*" if r["flag"] else ""))


def _folds(ctx, param, value):
    if value in (None, "all"):
        return ()
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected all or fold numbers such as 1,3") from None


def _sets(ctx, param, values):
    from austack.studies.sweep import scalar

    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{v!r}: expected KEY=VALUE, e.g. epochs=5")
        out[key.strip()] = scalar(val.strip())
    return out


@cli.command(context_settings={"max_content_width": 80})
@click.argument("recipe")
@click.option("--param", "params", multiple=True, required=True, metavar="KEY=V1,V2",
              help="A swept setting: a recipe field (lr=1e-3,3e-3) or a loss option "
                   "(loss.beta_neg=0.2,0.4,0.8). Repeat for a grid.")
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="Prepared store.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Sweep folder: runs, CSVs, figures, README.md.")
@click.option("--folds", default="all", show_default=True, callback=_folds, metavar="K|all",
              help="Folds to run, e.g. 1 or 1,3.")
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True, help="Seeds 0..N-1.")
@click.option("--set", "sets", multiple=True, callback=_sets, metavar="KEY=VALUE",
              help="Fixed override of a recipe field for every point, e.g. epochs=5.")
@click.option("--db", help="Results database.  [default: OUT/results.sqlite]")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads (per task with --dask).  "
                                                         "[default: torch's]")
@click.option("--dask", metavar="local[:N]|ADDRESS",
              help="Every (setting, seed, fold) one task on a Dask cluster: local:N or a "
                   "scheduler address (docs/scale-out.md).")
def sweep(recipe, params, data, out, folds, seeds, sets, db, threads, dask):
    """Train RECIPE at every point of a grid; F1 against each parameter.

    \b
    Each point is its own config hash in the results database, so a rerun
    resumes and `austack compare` can test any two points. Writes results.csv,
    summary.csv (95% CIs over test subjects), sweep-KEY.png/.svg and README.md.
    Example (the paper's Fig. 5):
      austack study sweep table7-E --data bp4d.h5 --out beta \\
        --param loss.beta_neg=0.2,0.4,0.8
    """
    from austack.studies.sweep import parse_param, run_sweep
    from austack.studies.sweep_report import write_sweep_outputs

    result = run_sweep(recipe, [parse_param(p) for p in params], data=data, out=out, seeds=seeds,
                       folds=folds, overrides=sets, db=db, threads=threads, dask=dask)
    files = write_sweep_outputs(result, [_command_line()])
    click.echo(f"sweep done in {result.seconds:.0f} s; wrote:")
    for f in files:
        click.echo(f"  {f}")
