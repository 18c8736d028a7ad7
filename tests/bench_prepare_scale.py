"""frames/s of `prepare` with 1 and 2 workers, on the local process pool and on Dask.

    python tests/bench_prepare_scale.py RAW [--repeats 2]

RAW is a BP4D layout (e.g. `austack synth RAW --layout bp4d --size 1392 ...`). Each setting
runs `repeats` times, alternating; prints frames/s of the run itself (`PrepareReport`) and the
wall time including starting the pool or the LocalCluster.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from austack.prepare import prepare

SETTINGS = [("local pool", {"workers": 1}), ("local pool", {"workers": 2}),
            ("Dask LocalCluster", {"dask": "local:1"}), ("Dask LocalCluster", {"dask": "local:2"})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    runs: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(SETTINGS))}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for i, (_, kw) in enumerate(SETTINGS):
                t0 = time.perf_counter()
                rep = prepare("bp4d", args.raw, Path(tmp) / f"{i}-{r}.h5", landmarks="shipped", **kw)
                runs[i].append((rep.frames_per_s, time.perf_counter() - t0))
        frames = rep.frames
    print(f"| executor ({frames} frames) | workers | frames/s (each run) | wall s incl. start |")
    print("|---|---:|---:|---:|")
    for i, (name, kw) in enumerate(SETTINGS):
        n = kw.get("workers") or int(kw["dask"].split(":")[1])
        fps = ", ".join(f"{f:.1f}" for f, _ in runs[i])
        walls = ", ".join(f"{w:.1f}" for _, w in runs[i])
        print(f"| {name} | {n} | {fps} | {walls} |")


if __name__ == "__main__":
    main()
