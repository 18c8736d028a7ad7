"""Measure prepare's per-frame cost on one core at BP4D frame size (1392 x 1040).

    python tests/bench_prepare.py [--frames 60]
    taskset -c 0 python tests/bench_prepare.py --breakdown [--frames 16] [--shift -300]

`--breakdown`: on BP4D-like quality-100 frames (tests/_bp4d_frames.py), the per-frame loop
against `process_chunk` (alternating, best of 3 each) and where the short path's time goes.

Frames are the astronaut photo under small moves, scaled to 1392 x 1040 and written as JPEG
(BP4D ships JPEGs). Times `process_chunk` (decode, landmarks, align, JPEG-encode) with shipped
landmarks and with dlib, and dlib landmarks alone with the tracker vs detecting every frame.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _prepare_fake import _moved  # noqa: E402

from austack.datasets.base import FrameRecord, PixelSource  # noqa: E402
from austack.faces.landmarks import LandmarkTracker, detect_68  # noqa: E402
from austack.prepare import Job, process_chunk  # noqa: E402

W, H = 1392, 1040


def frames(folder: Path, n: int) -> list[FrameRecord]:
    out = []
    for k in range(n):
        img, p68 = _moved(k)
        # the 512 px photo scaled to the frame height (the face about 400 px across, as in BP4D)
        # and widened with mirrored margins
        img = cv2.resize(img, (H, H), interpolation=cv2.INTER_LINEAR)
        pad = (W - H) // 2
        img = cv2.copyMakeBorder(img, 0, 0, pad, W - H - pad, cv2.BORDER_REFLECT)
        p68 = p68 * (H / 512) + [pad, 0]
        path = folder / f"{k}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.append(FrameRecord("F001", "T1", k, PixelSource("image", str(path)), np.zeros(12, np.int8),
                               landmarks=p68.astype(np.float32)))
    return out


def _best(fn, frames: int, reps: int = 3) -> tuple[float, float]:
    """(best CPU ms per frame, minor page faults per frame of that run). CPU time, not wall
    time: on a shared machine it is what one core spends, whatever else runs."""
    import resource

    best = (float("inf"), 0.0)
    for _ in range(reps):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.process_time()
        fn()
        dt = 1e3 * (time.process_time() - t0) / frames
        best = min(best, (dt, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / frames))
    return best


def _roll(recs: list[FrameRecord], dy: int) -> list[FrameRecord]:
    """The frames rewritten with their rows rolled by `dy` (the face moved up for dy < 0)."""
    from dataclasses import replace

    for r in recs:
        cv2.imwrite(r.source.path, np.roll(cv2.imread(r.source.path), dy, axis=0), [cv2.IMWRITE_JPEG_QUALITY, 100])
    return [replace(r, landmarks=r.landmarks + np.float32([0, dy])) for r in recs]


def breakdown(n: int, shift: int = 0) -> None:
    from _bp4d_frames import write_bp4d_frames
    from austack.faces.align import at_scale, landmarks_68_to_49, last_row, similarity_49, warp
    from austack.faces.decode import decode_frames

    with tempfile.TemporaryDirectory() as tmp:
        recs = write_bp4d_frames(Path(tmp) / "in", n)
        recs = _roll(recs, shift) if shift else recs
        (Path(tmp) / "out").mkdir()
        bufs = [np.fromfile(r.source.path, np.uint8) for r in recs]
        ms = [similarity_49(landmarks_68_to_49(r.landmarks), 256, 2.9) for r in recs]

        def loop():
            for r, m in zip(recs, ms):
                m = similarity_49(landmarks_68_to_49(r.landmarks), 256, 2.9)
                cv2.imwrite(f"{tmp}/out/{r.frame}.jpg", warp(cv2.imread(r.source.path), m, 256))

        job = Job(recs, "shipped", 256, 2.9, "jpeg", 95, False, 12)
        red = [cv2.imdecode(b, cv2.IMREAD_REDUCED_COLOR_4) for b in bufs]
        srcs = [r.source for r in recs]
        lasts = [last_row(m, 256, 4) for m in ms]
        print(f"<!-- the warp reads frame rows down to {min(lasts)}-{max(lasts)} of {H} -->")
        out = np.empty((256, 256, 3), np.uint8)
        stages = [("per-frame loop (imread, matrix, warpAffine, imwrite)", loop),
                  ("process_chunk, --landmarks shipped (jpeg store)", lambda: process_chunk(job))] * 3 + [
            ("decode at full size (cv2.imdecode)", lambda: [cv2.imdecode(b, cv2.IMREAD_COLOR) for b in bufs]),
            ("decode at 1/4 (IMREAD_REDUCED_COLOR_4)", lambda: [cv2.imdecode(b, cv2.IMREAD_REDUCED_COLOR_4)
                                                             for b in bufs]),
            ("decode at 1/4 down to the face's last row (files read)",
             lambda: list(decode_frames(srcs, [4] * n, bgr=True, rows=lasts))),
            ("decode at 1/8 (DC only: about the entropy decoding alone)",
             lambda: [cv2.imdecode(b, cv2.IMREAD_REDUCED_COLOR_8) for b in bufs]),
            ("warp from the 1/4 decode", lambda: [warp(x, at_scale(m, 4), 256, out=out) for x, m in zip(red, ms)]),
            ("JPEG-encode the 256 px face (q95)", lambda: [cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 95])
                                                           for _ in bufs])]
        print(f"| {n} frames of {W}x{H}, quality 100, {len(bufs[0]) // 1000} kB | CPU ms/frame | minor faults/frame |")
        print("|---|---:|---:|")
        for name, fn in stages:
            dt, faults = _best(fn, n)
            print(f"| {name} | {dt:.1f} | {faults:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--breakdown", action="store_true")
    ap.add_argument("--shift", type=int, default=0, help="--breakdown with the frames' rows rolled by "
                    "this many (negative: the face higher up)")
    args = ap.parse_args()
    if args.breakdown:
        return breakdown(args.frames, args.shift)
    detect_68(np.zeros((64, 64, 3), np.uint8))  # load the dlib models outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        recs = frames(Path(tmp), args.frames)
        print(f"| stage ({args.frames} frames of {W}x{H}, one process) | ms/frame | frames/s |")
        print("|---|---:|---:|")
        for mode in ("shipped", "dlib"):
            t0 = time.perf_counter()
            res = process_chunk(Job(recs, mode, 256, 2.9, "jpeg", 95, False, 12))
            dt = (time.perf_counter() - t0) / len(recs)
            print(f"<!-- {mode}: {int(res.rows.face.sum())}/{len(recs)} frames with a face -->")
            print(f"| prepare, --landmarks {mode} (decode + landmarks + align + encode) | {1e3 * dt:.1f} | {1 / dt:.1f} |")
        imgs = [cv2.cvtColor(cv2.imread(r.source.path), cv2.COLOR_BGR2RGB) for r in recs]
        tracker = LandmarkTracker()
        for name, fn in (("dlib, detect every frame (640 px detector input)", lambda: [detect_68(i) for i in imgs]),
                         ("dlib, LandmarkTracker (reuse the previous box)", lambda: [tracker(i) for i in imgs])):
            t0 = time.perf_counter()
            fn()
            dt = (time.perf_counter() - t0) / len(imgs)
            print(f"| {name} | {1e3 * dt:.1f} | {1 / dt:.1f} |")
        print(f"<!-- tracker: {tracker.stats} -->")


if __name__ == "__main__":
    main()
