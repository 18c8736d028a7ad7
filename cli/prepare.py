"""`austack prepare DATASET RAW_DIR OUT.h5`: align a raw distribution into one HDF5 store."""
from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console

from austack.prepare import PrepareOptions, cli_fields, prepare
from austack.progress import make_progress

from ._reader_options import reader_option
from ._store_tables import anomaly_table


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a scheduler's or `kill`'s stop) stops the run like Ctrl-C: the chunks saved
    so far stay, resumable."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _option_for(f) -> click.Option:
    """One click option from a PrepareOptions field and its metadata (help, range, flag)."""
    m = f.metadata
    flag, kind = (m["flag"] or f.name).replace("_", "-"), str(f.type)
    if kind == "bool":
        return click.Option([f"--{flag}", f.name], is_flag=True, help=m["help"])
    kw: dict = dict(default=f.default, help=m["help"], metavar=m["metavar"], show_default=f.default is not None)
    if m["choices"]:
        kw["type"] = click.Choice(m["choices"])
    elif kind.startswith("int"):
        kw["type"] = click.IntRange(m["min"], m["max"])
    elif kind.startswith("float"):
        kw["type"] = click.FloatRange(m["min"], m["max"], min_open=m["min_open"])
    return click.Option([f"--{flag}", f.name], **kw)


def _interrupted(out: Path, shards: bool) -> str:
    """Name the folder a resume continues only when the run got as far as making it."""
    left = out.with_name(out.name + (".shards" if shards else ".partial"))
    if left.exists():
        return f"interrupted; rerun with --resume to continue {left}"
    return "interrupted before anything was saved; rerun the command to start again"


@click.command()
@click.argument("dataset")
@click.argument("raw_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@reader_option
def cli(dataset, raw_dir, out, **settings):
    """Align every frame of RAW_DIR (a raw DATASET distribution) into the store OUT.h5."""
    console = Console()
    settings["reader_options"] = settings["reader_options"] or None   # none given: the reader's defaults
    o = PrepareOptions(**_usable(settings))
    console.print(f"[bold]prepare[/] {dataset} {raw_dir} -> {out}  {_where(o)} landmarks={o.landmarks} "
                  f"size={o.size} box_enlarge={o.box_enlarge} store={o.encoding} resume={o.resume} force={o.force}")
    with make_progress(console) as bar:
        task = bar.add_task("frames", total=None, detail="reading labels")

        def progress(done: int, total: int, subject: str) -> None:
            bar.update(task, completed=done, total=total, detail=subject)

        try:
            with _sigterm_as_interrupt():
                report = prepare(dataset, raw_dir, out, o, progress=progress)
        except KeyboardInterrupt:
            bar.stop()
            raise click.ClickException(_interrupted(Path(out), o.shards)) from None
    _say_report(console, report, o.shards)
    table = anomaly_table(report.anomalies, root=str(Path(raw_dir).resolve()))
    if table is not None:
        console.print(table)



def _usable(settings: dict) -> dict:
    """The options as given, after the checks that are usage errors (exit 2)."""
    if settings["dask"] is not None and settings["workers"] != 1:
        raise click.UsageError("--workers and --dask both given; with --dask the cluster's workers run "
                               "the chunks (local:N sets their number)")
    if settings["virtual"] and not settings["shards"]:
        raise click.UsageError("--virtual makes a store over shards: give --shards too")
    return settings


def _where(o: PrepareOptions) -> str:
    where = f"dask={o.dask}" if o.dask else f"workers={o.workers}"
    if o.device:
        where += f" device={o.device}"
    if o.shards:
        where += f" shards={o.shard_sessions} sessions{' virtual' if o.virtual else ''}"
    return where


def _say_report(console: Console, report, shards: bool) -> None:
    if report.already_complete:
        console.print(f"{report.out} is already complete ({report.frames} frames, {report.sessions} sessions); "
                      "nothing to do")
    else:
        origins = ", ".join(f"{k} {v}" for k, v in sorted(report.origins.items()))
        kept = "the shards" if shards else "the partial folder"
        console.print(f"[bold green]wrote[/] {report.out}: {report.frames} frames in {report.sessions} sessions "
                      f"({report.resumed_sessions} kept from {kept}); this run {report.written_frames} "
                      f"frames in {report.seconds:.1f} s ({report.frames_per_s:.1f} frames/s), "
                      f"{report.faces} aligned, {report.no_face} without a face; landmarks: {origins or 'none'}")


for _field in reversed(cli_fields()):
    cli.params.insert(3, _option_for(_field))
