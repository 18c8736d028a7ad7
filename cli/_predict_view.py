"""What `austack predict` shows: a rich progress bar with frames/s, then a summary."""
from __future__ import annotations

from rich.console import Console

from austack.progress import make_progress


class PredictView:
    """Progress over the frames (total from the headers, when they say)."""

    def __init__(self, total: int | None, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = make_progress(self.console, unit="frames")
        self.total, self.task, self.done = total, None, 0

    def __enter__(self) -> "PredictView":
        self.progress.__enter__()
        self.task = self.progress.add_task("predict", total=self.total, detail="")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, tally) -> None:
        if tally.frames - self.done >= 8:   # rich redraws at its own pace; fewer calls suffice
            self.done = tally.frames
            self.progress.update(self.task, completed=tally.frames,
                                 detail=f"{tally.frames_with_face} with a face")


def print_summary(console: Console, det, path, out, side, tally, anomalies, upsample: int) -> None:
    info = det.info
    rate = tally.frames / tally.seconds if tally.seconds > 0 else 0.0

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    say(f"detector: {path}")
    say(f"  trained on {info.get('dataset')} ({info.get('protocol')}), fold {info.get('fold')}, "
        f"{info.get('loss')}; {len(det.aus)} AUs" + ("; SYNTHETIC data" if info.get("synthetic") else ""))
    say(f"{tally.frames} frames in {tally.seconds:.1f} s ({rate:.1f} frames/s): "
        f"{tally.frames_with_face} with a face, {tally.faces} faces in all")
    if tally.undecodable:
        say(f"{tally.undecodable} frames could not be decoded (rows with face=0)")
    for a in anomalies:
        say(f"  {a.kind}: {a.path}: {a.detail}")
    if tally.frames and tally.frames_with_face < 0.5 * tally.frames and upsample == 0:
        say("most frames had no face found; for faces under about 80 px try --upsample 1")
    for line in small_face_hint(tally, upsample):
        say(line)
    say(f"wrote {out} and {side}")


def small_face_hint(tally, upsample: int) -> list[str]:
    """--all-faces shrinks large images before the face search; say which faces that misses."""
    if tally.smallest_findable <= 0 or upsample >= 3:
        return []
    return [f"--all-faces searched shrunk images: faces under about {tally.smallest_findable:.0f} px "
            f"across", f"were missed; --upsample {upsample + 1} finds faces half that size (slower)"]
