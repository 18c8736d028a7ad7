"""`austack synth DEST --layout bp4d`: a synthetic dataset in a real dataset's raw layout."""
from __future__ import annotations

import click
from rich.console import Console

from austack.synth import DEFAULT_SIZE, MAX_NOISE, MIN_SIZE, load_layouts, synthesize


@click.command(help="Write a synthetic dataset in a real dataset's raw layout.\n\n"
                    "Faces are rendered from a real photograph with AUs as local deformations. Every "
                    "session shows every AU at the dataset's occurrence rate (to a frame, at least "
                    "once). DEST/_synth/manifest.json marks the folder synthetic and keeps the "
                    "truth: clean labels, settings, seed, noise, injected anomalies.")
@click.argument("dest", type=click.Path(file_okay=False, writable=True))
@click.option("--layout", required=True, type=click.Choice(load_layouts()), help="Raw layout to write.")
@click.option("--subjects", default=6, show_default=True, type=click.IntRange(1), help="Subjects to generate.")
@click.option("--sessions", default=2, show_default=True, type=click.IntRange(1),
              help="Sessions (tasks, videos) per subject, where the layout has more than one.")
@click.option("--frames", default=40, show_default=True, type=click.IntRange(1), help="Frames per session.")
@click.option("--size", default=DEFAULT_SIZE, show_default=True, type=click.IntRange(MIN_SIZE),
              help="Frame width in pixels; the height follows the dataset's aspect.")
@click.option("--noise", default=0.0, show_default=True, type=click.FloatRange(0.0, MAX_NOISE),
              help="Probability of flipping each written occurrence label.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Same seed, same bytes.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier synthetic set in DEST.")
def cli(dest, layout, subjects, sessions, frames, size, noise, seed, overwrite):
    from austack.progress import make_progress

    console = Console(stderr=True)
    console.print(f"synth [bold]{layout}[/] -> {dest}: subjects={subjects} sessions={sessions} frames={frames} "
                  f"size={size} noise={noise} seed={seed}")
    with make_progress(console) as bar:
        task = bar.add_task(f"synth {layout}", total=None, detail="")
        report = synthesize(dest, layout, subjects=subjects, sessions=sessions, frames=frames, size=size,
                            noise=noise, seed=seed, overwrite=overwrite,
                            progress=lambda done, total, subject: bar.update(task, completed=done, total=total))
    w, h = report.frame_size
    lines = [f"wrote {report.frames} frames ({w}x{h}) of {len(report.subjects)} subjects, "
             f"{report.sessions} sessions in {report.seconds:.1f} s",
             f"to {report.dest}",
             f"labels follow {report.protocol}; noise flipped {report.flipped} of {report.labels}",
             f"injected anomalies: {len(report.anomalies)}"
             + "".join(f"\n  {kind}: {path}" for kind, path in report.anomalies),
             f"truth: {report.manifest}"]
    click.echo("\n".join(lines))
