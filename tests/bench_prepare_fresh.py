"""prepare against the per-frame loop, each run as a script runs: a fresh process per run.

    austack synth RAW --layout bp4d --subjects 4 --sessions 2 --frames 300 --size 1392 --seed 3
    taskset -c 0 python tests/bench_prepare_fresh.py RAW [--runs 3]

Copies RAW (hard links) with every frame re-encoded at JPEG quality 100 with +-3 grey levels
of noise, as BP4D ships its frames, leaving out the sessions where a frame lacks shipped
landmarks or an image (so both sides align every frame). Then alternates, each in a process
of its own (pinned to the parent's core), the per-frame loop research repos run
(`cv2.imread` -> 49-point matrix -> `warpAffine` -> `imwrite`, landmarks read beforehand,
untimed) and the whole `prepare(..., workers=1)` (plan, labels, landmark files, decode,
align, encode, the store's writes). A fresh process matters for the loop: there glibc hands
each decoded frame's memory back to the system and faults it in again, a page fault per page
every frame, which it does not in a process that has run prepare before.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from austack.faces.align import similarity_49, to_49, warp
from austack.datasets.base import AnomalyReport
from austack.prepare import make_plan, prepare


def _sessions(raw: Path) -> list:
    plan = make_plan("bp4d", raw, landmarks="shipped", size=256, box_enlarge=2.9, encoding="jpeg",
                     reader_options=None, detect_max_side=640, chunk_frames=256)
    return [(ref, plan.reader.read_session(ref, AnomalyReport()).frames) for ref in plan.refs]


def quality_100_copy(raw: Path, out: Path, complete_only: bool = True) -> None:
    """RAW copied to `out` with every frame re-encoded at quality 100 with noise; with
    `complete_only`, without the sessions where a frame lacks landmarks or an image."""
    shutil.copytree(raw, out, copy_function=os.link)
    rng = np.random.default_rng(0)
    for ref, frames in _sessions(out):
        complete = all(f.landmarks is not None and Path(f.source.path).exists() for f in frames)
        if complete_only and not complete:   # BP4D's labels name the session: without them it is not read
            (out / "AUCoding" / "AU_OCC" / f"{ref.subject}_{ref.session}.csv").unlink()
            continue
        for f in frames:
            if not Path(f.source.path).exists():
                continue
            image = cv2.imread(f.source.path).astype(np.int16)
            noisy = np.clip(image + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
            os.unlink(f.source.path)   # a hard link to RAW's file: do not write through it
            cv2.imwrite(f.source.path, noisy, [cv2.IMWRITE_JPEG_QUALITY, 100])


def one_run(mode: str, raw: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if mode == "loop":
            frames = [f for _, fs in _sessions(raw) for f in fs]
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0, c0 = time.perf_counter(), time.process_time()
        if mode == "loop":
            for i, f in enumerate(frames):
                m = similarity_49(to_49(f.landmarks), 256, 2.9)
                cv2.imwrite(f"{tmp}/{i}.jpg", warp(cv2.imread(f.source.path), m, 256))
            n = len(frames)
        else:
            n = prepare("bp4d", raw, f"{tmp}/out.h5", landmarks="shipped", workers=1).frames
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n
    print(f"{mode} {n} {n / wall:.1f} {n / cpu:.1f} {faults:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--one", choices=["loop", "prepare"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return one_run(args.one, args.raw)
    with tempfile.TemporaryDirectory() as tmp:
        q100 = Path(tmp) / "q100"
        quality_100_copy(args.raw, q100)
        print("| run (fresh process, one core) | frames | frames/s | per CPU s | minor faults/frame |")
        print("|---|---:|---:|---:|---:|")
        rates: dict[str, list[float]] = {"loop": [], "prepare": []}
        for _ in range(args.runs):
            for mode in rates:
                out = subprocess.run([sys.executable, __file__, str(q100), "--one", mode], check=True,
                                     capture_output=True, text=True).stdout.split()
                rates[mode].append(float(out[2]))
                print(f"| {' | '.join(out)} |")
    ratio = np.mean(rates["prepare"]) / np.mean(rates["loop"])
    print(f"\nprepare / loop, mean frames/s: {ratio:.2f}x")


if __name__ == "__main__":
    main()
