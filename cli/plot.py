"""`austack plot bars|tsne|pr`: figures a paper could use, from recorded results."""
from __future__ import annotations

from pathlib import Path

import click

OUT = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                   help="PNG file to write; an SVG is written beside it.")


@click.group(context_settings={"max_content_width": 80})
def cli():
    """Figures: per-AU F1 bars with CIs, t-SNE of AU embeddings, PR curves."""


@cli.command(context_settings={"max_content_width": 80})
@click.argument("sources", nargs=-1, required=True)
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default="results.sqlite",
              show_default=True, help="Results database for config hashes and row ids.")
@click.option("--published", "published", multiple=True, metavar="METHOD",
              help="Published method to draw beside (repeatable; `austack leaderboard` lists them). "
                   "Default: AUNCE.")
@click.option("--no-published", is_flag=True, help="Draw no published rows.")
@click.option("--boot", type=click.IntRange(100), default=2000, show_default=True,
              help="Bootstrap draws over test subjects for the 95% CIs.")
@OUT
def bars(sources, db_path, published, no_published, boot, out):
    """Per-AU F1 with 95% CIs of SOURCES beside published rows of the same dataset.

    Each SOURCE is a run dir of `austack bench` or a config hash (or row id) in --db.
    """
    from austack.studies.bars_source import bar_series

    series, dataset, synthetic = bar_series(sources, db_path, n_boot=boot)
    if synthetic and not no_published:
        click.echo("synthetic results: drawn without published rows (they do not compare)")
    elif not no_published:
        from austack.studies.bars_source import published_series

        series += published_series(dataset, published or ("AUNCE",), series[0].aus)
    from austack.studies.au_plots import au_bars_figure

    data = f"synthetic data in the {dataset} layout" if synthetic else dataset
    for f in au_bars_figure(series, out, title=f"Per-AU test F1, {data} (whiskers: 95% CI over test subjects)"):
        click.echo(f"wrote {f}")


@cli.command(context_settings={"max_content_width": 80})
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--frames", type=click.IntRange(10), default=400, show_default=True,
              help="Faces embedded, evenly spaced over the split.")
@click.option("--method", type=click.Choice(["auto", "tsne", "pca"]), default="auto", show_default=True,
              help="auto: t-SNE up to 5000 points (faces x AUs), else PCA.")
@OUT
def tsne(run_dir, split, frames, method, out):
    """Each AU's embedding of a fold's faces in 2-D, coloured by label (Fig. 4).

    RUN_DIR is one fold's dir (holding detector.pt) or a run dir (its first fold).
    """
    import time

    from rich.console import Console

    from austack.progress import make_progress
    from austack.studies.embeddings import TSNE_MAX_POINTS, embedding_figure, fold_dir_of, fold_embeddings

    console = Console(stderr=True)
    say = lambda text: console.print(text, markup=False, highlight=False)   # noqa: E731

    def step(name: str, work):
        """A plain line before and after (logs), a bar with the elapsed time between (terminals)."""
        t0 = time.perf_counter()
        with make_progress(console, rate=False) as bar:
            bar.add_task(name, total=None, detail="")
            result = work()
        say(f"  done in {time.perf_counter() - t0:.1f} s")
        return result

    fold_dir = fold_dir_of(run_dir)
    say(f"embedding up to {frames} {split} faces with {fold_dir / 'detector.pt'}")
    emb, labels, aus, info = step("embed", lambda: fold_embeddings(fold_dir, split=split, max_frames=frames))
    points = len(emb) * len(aus)
    tsne_used = method == "tsne" or (method == "auto" and points <= TSNE_MAX_POINTS)
    say(f"projecting {points} points ({len(emb)} faces x {len(aus)} AUs) with "
        + ("t-SNE: minutes on a CPU for thousands of points" if tsne_used else "PCA"))
    title = f"{info.get('loss', '?')} fold {info.get('fold', '?')}, {len(emb)} {split} faces"
    files, used = step("project", lambda: embedding_figure(emb, labels, aus, out, title=title, method=method))
    for f in files:
        click.echo(f"wrote {f} ({used})")


@cli.command(context_settings={"max_content_width": 80})
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@OUT
def pr(run_dir, out):
    """Precision-recall curves per AU from RUN_DIR's stored test predictions.

    RUN_DIR is a run dir of `austack bench` (one curve per fold) or one fold's dir.
    """
    from austack.studies.au_plots import fold_predictions, pr_figure

    preds, name = fold_predictions(run_dir)
    for f in pr_figure(preds, out, title=f"Test precision-recall per AU: {name}"):
        click.echo(f"wrote {f}")
