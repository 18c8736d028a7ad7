"""`austack bench`: train and score an AU detector on a prepared store; record the result.

A thin layer over `austack.engine.run_and_record`. Its options are generated from
`BenchConfig`'s fields (help, range and default come from the field), so a new setting is
declared once; loss options are one generic `--loss-opt KEY=VALUE`, checked against the
loss's own signature. Recipe defaults < command-line flags (flags left unset override nothing).
"""
from __future__ import annotations

import fnmatch
from typing import Any

import click

from austack.runs.config import BenchConfig, cli_fields
from austack.runs.recipes import list_recipes, load_recipe

OPTION_NAMES = {"folds": "fold"}   # field -> flag, where the singular reads better


def _fold(ctx, param, text: str | None):
    if text is None:
        return None
    if text == "all":
        return ()
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected a fold number, a comma-separated list or 'all', got {text!r}") from None


def _loss_opts(ctx, param, values: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs; VALUE is a number (1e-3 too), true/false, a word or [list]; a bare
    a,b,c is a list."""
    from austack.runs.config import parse_value
    from austack.errors import ConfigError

    out = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE such as tau=0.5, got {item!r}")
        try:
            if "," in text and not text.lstrip().startswith("["):
                out[key.strip()] = [parse_value(v.strip()) for v in text.split(",")]
            else:
                out[key.strip()] = parse_value(text.strip())
        except ConfigError:
            raise click.BadParameter(f"cannot read the value of {item!r}") from None
    return out


def _option_for(f) -> click.Option:
    """One click option from a BenchConfig field and its metadata."""
    m, flag = f.metadata, OPTION_NAMES.get(f.name, f.name).replace("_", "-")
    kind = str(f.type)
    default = f.default if f.default not in (None, "", ()) else None
    shown = {"folds": "all"}.get(f.name, default)
    if isinstance(f.default, bool):
        shown = "on" if f.default else "off"
    help_text = m["help"] + (f" [default: {shown}]" if shown is not None else "")
    kw: dict[str, Any] = dict(default=None, help=help_text, metavar=m["metavar"])
    if f.name == "folds":
        return click.Option([f"--{flag}", f.name], callback=_fold, **kw)
    if kind.startswith("tuple[str"):   # a repeatable option; none given overrides nothing
        return click.Option([f"--{flag}", f.name], multiple=True, callback=lambda c, p, v: tuple(v) or None,
                            **{**kw, "default": ()})
    if kind == "bool":
        return click.Option([f"--{flag}/--no-{flag}", f.name], **{**kw, "metavar": None})
    if m["choices"]:
        kw["type"] = click.Choice(m["choices"])
    elif kind.startswith("int"):
        kw["type"] = click.INT if m["min"] is None else click.IntRange(m["min"], m["max"])
    elif kind.startswith("float"):
        kw["type"] = click.FloatRange(m["min"], m["max"], min_open=m["min_open"])
    return click.Option([f"--{flag}", f.name], **kw)


def build_config(backbone, loss, settings: dict[str, Any], loss_opts: dict[str, Any], recipe: str | None):
    """Recipe < flags. Settings whose value is None were not given and override nothing."""
    base = load_recipe(recipe) if recipe else {}
    base["loss_options"] = {**(base.get("loss_options") or {}), **loss_opts}
    base.update({k: v for k, v in settings.items() if v is not None})
    base.update({k: v for k, v in (("backbone", backbone), ("loss", loss)) if v})
    missing = [k for k in ("backbone", "loss", "data") if not base.get(k)]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}: give BACKBONE LOSS and --data STORE.h5, "
                               f"or a --recipe that sets them")
    return BenchConfig.from_dict(base)


def expand_recipes(pattern: str | None) -> list[str | None]:
    """A recipe name, file, or a glob over the shipped recipes ('table6-*')."""
    if pattern is None or not any(c in pattern for c in "*?["):
        return [pattern]
    names = [n for n in list_recipes() if fnmatch.fnmatchcase(n, pattern)]
    if not names:
        raise click.BadParameter(f"no shipped recipe matches {pattern!r} (recipes: {', '.join(list_recipes())})",
                                 param_hint="--recipe")
    return names


def run_recipe(cfg: BenchConfig):
    from austack.engine import ddp, run_and_record

    from austack.progress import BenchView

    from ._bench_view import print_results

    with BenchView() as view:
        outcome = run_and_record(cfg, console=view.console, progress=view.update)
    if ddp.current().is_main:
        print_results(view.console, outcome.rows)
        targets: dict[tuple, list] = {}
        for r in outcome.cross:
            targets.setdefault((r.store_checksum, r.test_split), []).append(r)
        for rows in targets.values():
            print_results(view.console, rows)
        if outcome.db is not None:
            ids = ", ".join(map(str, outcome.ids + outcome.cross_ids))
            view.console.print(f"recorded in {outcome.db}: rows {ids}", markup=False)
    return outcome


def run_on_dask(cfgs: list[BenchConfig], address: str, threads: int | None):
    """Every fold of every config one Dask task; the per-AU table per config at the end."""
    import os

    from rich.console import Console

    from austack.engine.distributed_tasks import run_tasks

    from ._bench_view import print_results

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise click.UsageError("--dask runs one process per task; do not start it under torchrun")
    console = Console(log_path=False)
    report = run_tasks(cfgs, address, console=console, threads=threads)
    for outcome in report.outcomes:
        print_results(console, outcome.rows)
        if outcome.db is not None:
            ids = ", ".join(str(i) for i in outcome.ids if i >= 0)
            console.print(f"recorded in {outcome.db}: rows {ids or 'none'}", markup=False)
    console.print(f"{report.tasks} task(s): {report.seconds:.1f} s, of which cluster start "
                  f"{report.startup_s:.1f} s, tasks {report.tasks_s:.1f} s", markup=False)
    if report.lost:
        raise click.ClickException(f"{len(report.lost)} task(s) failed twice and were not recorded; first: "
                                   f"{report.lost[0].label}: {report.lost[0].error}; rerun the same command")
    return report.outcomes


@click.command(context_settings={"max_content_width": 80})
@click.argument("backbone", required=False)
@click.argument("loss", required=False)
@click.option("--recipe", metavar="NAME|FILE|GLOB",
              help="Defaults from baselines/recipes/NAME.yaml, a YAML file, or every shipped recipe "
                   "matching a glob such as 'table6-*' (each run and recorded on its own).")
@click.option("--loss-opt", "loss_opts", multiple=True, metavar="KEY=VALUE", callback=_loss_opts,
              help="A loss option, repeatable: --loss-opt tau=0.5 --loss-opt p=0.15,0.15,0.7 "
                   "(`austack list losses --options` shows each loss's options).")
@click.option("--dask", metavar="local[:N]|ADDRESS",
              help="Run every (recipe, fold) as a task on a Dask cluster: local:N starts N "
                   "workers here (one per GPU), or a scheduler such as tcp://head:8786 "
                   "(docs/scale-out.md).")
@click.option("--task-threads", type=click.IntRange(1), metavar="N",
              help="With --dask: torch CPU threads per task (the numbers depend on it). "
                   "[default: a host's cores over its workers]")
def cli(backbone, loss, recipe, loss_opts, dask, task_threads, **settings):
    """Train BACKBONE with LOSS on a prepared store and record one result row per fold.

    The loss declares how it is trained and evaluated: WCE trains the encoder
    end to end; AUNCE trains it alone, then fits one linear classifier per AU
    on the frozen encoder. Every choice (epoch, linear head, --threshold val)
    is made on validation subjects drawn from the training part; the test fold
    is scored once. A fold already recorded with the same settings, store and
    seed is not run again.

    \b
    Examples:
      austack bench resnet18 wce --data bp4d.h5 --fold 1
      austack bench resnet18 aunce.paper --data bp4d.h5 --loss-opt tau=0.5
      austack bench --recipe 'table6-*' --data bp4d.h5
      austack bench resnet18 wce --data bp4d.h5 --test-data disfa.h5
      austack bench resnet18 wce --data bp4d.h5 --dask local:2
      torchrun --nproc-per-node 2 $(which austack) \\
        bench resnet50 aunce.paper --data bp4d.h5
    """
    names = expand_recipes(recipe)
    cfgs = [build_config(backbone, loss, settings, loss_opts, name) for name in names]
    if dask:
        outcomes = run_on_dask(cfgs, dask, task_threads)
    else:
        if task_threads:
            raise click.UsageError("--task-threads applies to --dask runs; set OMP_NUM_THREADS for a local one")
        outcomes = [run_recipe(cfg) for cfg in cfgs]
    rows = [r for o in outcomes for r in o.rows if r is not None]
    if len(names) > 1:
        from ._bench_view import print_table_leaderboard
        print_table_leaderboard(outcomes)
    if rows and all(r.status == "error" for r in rows):
        raise click.ClickException(f"every fold failed; first error: {rows[0].error}")


for _field in reversed(cli_fields()):
    cli.params.insert(2, _option_for(_field))
