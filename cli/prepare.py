"""`austack prepare DATASET RAW_DIR OUT.h5`: align a raw distribution into one HDF5 store."""
from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console

from austack.prepare import LANDMARK_MODES, SHARD_SESSIONS, prepare
from austack.progress import make_progress
from austack.store import ENCODINGS

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


@click.command()
@click.argument("dataset")
@click.argument("raw_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (sessions are decoded and aligned in parallel).")
@click.option("--landmarks", default="auto", show_default=True, type=click.Choice(LANDMARK_MODES),
              help="auto: shipped landmarks where present, dlib elsewhere.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=16), help="Aligned image side.")
@click.option("--box-enlarge", default=2.9, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Face box enlargement of the 49-point alignment.")
@click.option("--store", "encoding", default="jpeg", show_default=True, type=click.Choice(ENCODINGS),
              help="Image encoding in the store (see docs/benchmarks.md).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run (OUT.h5.partial).")
@click.option("--force", is_flag=True, help="Rebuild OUT.h5 (or restart its partial file) from scratch.")
@click.option("--dask", "dask", metavar="ADDRESS", default=None,
              help="Run on a Dask cluster: local[:N] (N worker processes here) or a scheduler, "
                   "e.g. tcp://host:8786 (docs/scale-out.md).")
@click.option("--device", default=None, metavar="DEVICE",
              help="Decode JPEG frames that have shipped landmarks on this torch device (cuda, "
                   "cuda:1: nvJPEG) and warp them in batches; other frames take the CPU path. "
                   "Recorded in the store (docs/benchmarks.md).")
@click.option("--shards", is_flag=True,
              help="Each task writes a shard store of a few sessions into OUT.shards/; OUT.h5 is "
                   "copied from them (docs/scale-out.md).")
@click.option("--virtual", is_flag=True,
              help="With --shards: keep the shards and make OUT.h5 virtual datasets over them.")
@click.option("--shard-sessions", default=SHARD_SESSIONS, show_default=True, type=click.IntRange(min=1),
              help="Sessions per shard, with --shards.")
@reader_option
def cli(dataset, raw_dir, out, workers, landmarks, size, box_enlarge, encoding, resume, force, dask, device,
        shards, virtual, shard_sessions, reader_options):
    """Align every frame of RAW_DIR (a raw DATASET distribution) into the store OUT.h5."""
    console = Console()
    if dask is not None and workers != 1:
        raise click.UsageError("--workers and --dask both given; with --dask the cluster's workers run "
                               "the chunks (local:N sets their number)")
    if virtual and not shards:
        raise click.UsageError("--virtual makes a store over shards: give --shards too")
    where = f"dask={dask}" if dask else f"workers={workers}"
    if device:
        where += f" device={device}"
    if shards:
        where += f" shards={shard_sessions} sessions{' virtual' if virtual else ''}"
    console.print(f"[bold]prepare[/] {dataset} {raw_dir} -> {out}  {where} landmarks={landmarks} "
                  f"size={size} box_enlarge={box_enlarge} store={encoding} resume={resume} force={force}")
    with make_progress(console) as bar:
        task = bar.add_task("frames", total=None, detail="reading labels")

        def progress(done: int, total: int, subject: str) -> None:
            bar.update(task, completed=done, total=total, detail=subject)

        try:
            with _sigterm_as_interrupt():
                report = prepare(dataset, raw_dir, out, workers=workers, landmarks=landmarks, size=size,
                                 box_enlarge=box_enlarge, store=encoding, resume=resume, force=force,
                                 progress=progress, dask=dask, device=device, shards=shards, virtual=virtual,
                                 shard_sessions=shard_sessions, reader_options=reader_options or None)
        except KeyboardInterrupt:
            bar.stop()
            left = f"{out}.shards" if shards else f"{out}.partial"
            raise click.ClickException(f"interrupted; rerun with --resume to continue {left}") from None
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
    table = anomaly_table(report.anomalies, root=str(Path(raw_dir).resolve()))
    if table is not None:
        console.print(table)
