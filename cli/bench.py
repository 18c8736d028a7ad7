"""`austack bench`: train and score an AU detector on a prepared store; record the result.

A thin layer over `austack.engine.run_bench`: recipe defaults < command-line flags (flags left
unset override nothing), rich progress while it runs, a per-AU table at the end, one row per
fold into the results database.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from austack.engine.config import AUGMENT_POLICIES, LR_SCHEDULES
from austack.engine.recipes import load_recipe


def _floats(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers such as 0.15,0.15,0.7, got {text!r}",
                                 param_hint="--p") from None


def _fold(text: str) -> tuple[int, ...]:
    if text == "all":
        return ()
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected a fold number, a comma-separated list or 'all', got {text!r}",
                                 param_hint="--fold") from None


def build_config(backbone, loss, options: dict[str, Any], recipe: str | None):
    """Recipe < flags. Options whose value is None were not given and override nothing."""
    from austack.engine.config import BenchConfig

    settings = load_recipe(recipe) if recipe else {}
    loss_options = dict(settings.pop("loss_options", None) or {})
    for key in ("tau", "p", "beta_pos", "beta_neg"):
        value = options.pop(key)
        if value is not None:
            loss_options[key] = value
    given = {k: v for k, v in options.items() if v is not None}
    settings.update(given)
    if backbone:
        settings["backbone"] = backbone
    if loss:
        settings["loss"] = loss
    missing = [k for k in ("backbone", "loss", "data") if not settings.get(k)]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}: give BACKBONE LOSS and --data STORE.h5, "
                               f"or a --recipe that sets them")
    settings["loss_options"] = loss_options
    return BenchConfig.from_dict(settings)


class BenchView:
    """The shared progress display for a bench run: one bar per epoch (steps), images/s and loss
    in its detail column, a log line per epoch and per fold; quiet when not on a terminal."""

    def __init__(self):
        from rich.console import Console

        from austack.progress import make_progress

        self.console = Console(log_path=False)
        self.progress = make_progress(self.console, unit="steps")
        self.task = None

    def __enter__(self) -> "BenchView":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, ev) -> None:
        if ev.kind == "step":
            desc = f"fold {ev.fold} {ev.phase} epoch {ev.epoch}/{ev.epochs}"
            detail = f"{ev.images_per_s:.0f} img/s  loss {ev.loss:.4f}"
            if self.task is None:
                self.task = self.progress.add_task(desc, total=ev.steps, detail=detail)
            self.progress.update(self.task, description=desc, total=ev.steps, completed=ev.step, detail=detail)
        elif ev.kind == "epoch":
            val = "" if ev.val_f1 is None else f"  val F1 {100 * ev.val_f1:.1f}"
            rate = "" if ev.images_per_s is None else f"  {ev.images_per_s:.0f} img/s"
            self.progress.console.log(f"fold {ev.fold} {ev.phase} epoch {ev.epoch}/{ev.epochs}  "
                                      f"loss {ev.loss:.4f}{val}{rate}")
        elif ev.kind == "fold_done" and ev.row.status == "ok":
            self.progress.console.log(f"fold {ev.fold}: test F1 {100 * ev.row.f1_mean:.1f} (epoch {ev.row.best_epoch} "
                                      f"chosen on val, val F1 {100 * ev.row.val_f1_mean:.1f})")


def print_results(console, rows) -> None:
    """Per-AU test F1 (%) of each fold and their mean; failed folds listed under the table."""
    from rich.table import Table

    ok = [r for r in rows if r.status == "ok"]
    if ok:
        table = Table(title=f"{ok[0].dataset} {ok[0].backbone} + {ok[0].loss}: test F1 (%)")
        table.add_column("AU", no_wrap=True)
        for r in ok:
            table.add_column(f"fold {r.fold}", justify="right", no_wrap=True)
        table.add_column("mean", justify="right", no_wrap=True, style="bold")
        for i, au in enumerate(ok[0].aus):
            values = [r.f1[i] for r in ok]
            table.add_row(f"AU{au}", *(f"{100 * v:.1f}" for v in values), f"{100 * sum(values) / len(values):.1f}")
        table.add_section()
        for name, get in (("Avg. F1", lambda r: r.f1_mean), ("Avg. accuracy", lambda r: r.accuracy_mean),
                          ("val F1 (selection)", lambda r: r.val_f1_mean)):
            values = [get(r) for r in ok]
            table.add_row(name, *(f"{100 * v:.1f}" for v in values), f"{100 * sum(values) / len(values):.1f}")
        table.add_row("best epoch", *(str(r.best_epoch) for r in ok), "")
        console.print(table)
        if not ok[0].comparable:
            console.print("[yellow]debug subsampling (--limit-train): not comparable with other rows[/yellow]")
    for r in rows:
        if r.status == "error":
            console.print(f"[red]fold {r.fold} failed:[/red] {r.error}")


def record(console, db_path: str, rows) -> None:
    from austack.results.db import ResultsDB

    path = Path(db_path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with ResultsDB(path) as db:
        db.insert_many(rows)
    console.print(f"recorded {len(rows)} row(s) in {path}")


@click.command()
@click.argument("backbone", required=False)
@click.argument("loss", required=False)
@click.option("--data", type=click.Path(dir_okay=False, path_type=str), metavar="STORE.h5",
              help="Prepared store from `austack prepare`.")
@click.option("--fold", "folds", metavar="K|all", help="Fold to run (1, 2, 3, a list 1,3, or all). Default: all.")
@click.option("--epochs", type=click.IntRange(0), help="Training epochs (the encoder's, for AUNCE).")
@click.option("--batch-size", type=click.IntRange(2), help="Images per batch (AUNCE draws its pairs from it).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), help="AdamW learning rate.")
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES),
              help="constant (the paper) or cosine annealing over the epochs. Default: constant.")
@click.option("--grad-clip", type=click.FloatRange(0, min_open=True), metavar="NORM",
              help="Clip the gradients' global L2 norm to NORM each step. Default: no clipping.")
@click.option("--image-size", type=click.IntRange(16), help="Crop size fed to the encoder.")
@click.option("--device", help="auto | cpu | cuda | cuda:N (auto: CUDA when available).")
@click.option("--seed", type=int, help="Seed; CPU runs with the same seed give identical metrics.")
@click.option("--workers", type=click.IntRange(0), help="DataLoader worker processes.")
@click.option("--pretrained", type=click.Path(exists=True, dir_okay=False, path_type=str), metavar="FILE",
              help="Local backbone weights. Default: random initialisation (said in the results).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=str), help="Results database [results.sqlite].")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=str),
              help="Run dirs go here [runs]; rerunning a config resumes from its last.pt.")
@click.option("--recipe", metavar="NAME|FILE", help="Defaults from baselines/recipes/NAME.yaml or a YAML file.")
@click.option("--tau", type=click.FloatRange(0, min_open=True), help="AUNCE temperature.")
@click.option("--p", "p", metavar="P1,P2,P3", help="AUNCE positive-type probabilities.")
@click.option("--beta-pos", type=float, help="AUNCE negative re-weighting exponent for label-1 anchors.")
@click.option("--beta-neg", type=float, help="AUNCE negative re-weighting exponent for label-0 anchors.")
@click.option("--linear-epochs", type=click.IntRange(1), help="AUNCE linear-evaluation epochs.")
@click.option("--linear-lr", type=click.FloatRange(0, min_open=True),
              help="AUNCE linear-evaluation Adam step size. Default: 1e-2.")
@click.option("--linear-augment/--no-linear-augment", default=None,
              help="AUNCE linear evaluation on fresh crop+flip views each epoch instead of the centre "
                   "view embedded once (slower: the encoder embeds the training split every epoch).")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="torch.compile the training forward: faster steps on some GPUs after a compile of a "
                   "minute or two (see docs/benchmarks.md). Default: off.")
@click.option("--augment", type=click.Choice(AUGMENT_POLICIES),
              help="Training views: basic (crop+flip) or simclr (+ colour, grayscale, blur). "
                   "Default: simclr for AUNCE's two views, basic otherwise.")
@click.option("--limit-train", type=click.IntRange(1), metavar="N",
              help="Debug: train on N frames only; rows are marked not comparable.")
def cli(backbone, loss, data, folds, epochs, batch_size, lr, lr_schedule, grad_clip, image_size, device, seed,
        workers, pretrained, db, out_dir, recipe, tau, p, beta_pos, beta_neg, linear_epochs, linear_lr, linear_augment,
        compile_, augment, limit_train):
    """Train BACKBONE with LOSS on a prepared store and record one result row per fold.

    \b
    WCE trains the encoder end to end; AUNCE trains it with AUNCE alone, then fits one linear
    classifier per AU on the frozen encoder. The epoch is chosen on validation subjects drawn
    from the training part; the test fold is scored once.

    \b
    Examples:
      austack bench resnet18 wce --data bp4d.h5 --fold 1
      austack bench --recipe demo-aunce --data demo.h5
      torchrun --nproc-per-node 2 $(which austack) bench resnet50 aunce.paper --data bp4d.h5
    """
    from austack.engine import ddp
    from austack.engine.bench import run_bench

    options = dict(data=data, folds=_fold(folds) if folds else None, epochs=epochs, batch_size=batch_size, lr=lr,
                   lr_schedule=lr_schedule, grad_clip=grad_clip, image_size=image_size, device=device, seed=seed,
                   workers=workers, pretrained=pretrained, db=db, out_dir=out_dir, tau=tau, p=_floats(p),
                   beta_pos=beta_pos, beta_neg=beta_neg,
                   linear_epochs=linear_epochs, linear_lr=linear_lr, linear_augment=linear_augment,
                   compile=compile_, augment=augment, limit_train=limit_train)
    cfg = build_config(backbone, loss, options, recipe)
    with BenchView() as view:
        rows = run_bench(cfg, console=view.console, progress=view.update)
    if ddp.current().is_main:
        print_results(view.console, rows)
        record(view.console, cfg.db, rows)
    if all(r.status == "error" for r in rows):
        raise click.ClickException(f"every fold failed; first error: {rows[0].error}")
