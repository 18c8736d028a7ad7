"""frames/s of `prepare` with 1 and 2 workers, on the local process pool and on Dask.

    python tests/bench_prepare_scale.py RAW [--repeats 2] [--warm] [--q100]

RAW is a BP4D layout (e.g. `austack synth RAW --layout bp4d --size 1392 ...`). Each setting
runs `repeats` times, alternating; prints frames/s of the run itself (`PrepareReport`) and the
wall time including starting the pool or the LocalCluster. `--warm`: the Dask rows run on
LocalClusters started once (as `austack.prepare.dask_cluster` starts them) and reused, as a long-lived
cluster is, so their workers have imported austack before the timed runs. `--q100`: on a
copy of RAW with every frame re-encoded at JPEG quality 100 with noise, as BP4D ships them
(`bench_prepare_fresh.quality_100_copy`, every session kept).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from austack.prepare import prepare

SETTINGS = [("local pool", {"workers": 1}), ("local pool", {"workers": 2}),
            ("Dask LocalCluster", {"dask": "local:1"}), ("Dask LocalCluster", {"dask": "local:2"})]


def _warm_clusters() -> dict:
    import dask
    from distributed import Client, LocalCluster

    from austack.prepare.dask_cluster import SPAWN_ENV, glibc_malloc_env, warm_worker

    out = {}
    for _, kw in SETTINGS:
        if "dask" in kw:
            with dask.config.set({SPAWN_ENV: glibc_malloc_env(), "distributed.worker.profile.enabled": False}):
                out[kw["dask"]] = LocalCluster(n_workers=int(kw["dask"].split(":")[1]), threads_per_worker=1,
                                               dashboard_address=None)
            with Client(out[kw["dask"]]) as c:
                c.run(warm_worker)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--warm", action="store_true")
    ap.add_argument("--q100", action="store_true")
    args = ap.parse_args()
    if args.q100:
        from bench_prepare_fresh import quality_100_copy

        q100 = Path(tempfile.mkdtemp()) / "q100"
        quality_100_copy(Path(args.raw), q100, complete_only=False)
        args.raw = str(q100)
    clusters = _warm_clusters() if args.warm else {}
    runs: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(SETTINGS))}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for i, (_, kw) in enumerate(SETTINGS):
                if "dask" in kw and clusters:
                    kw = {"dask": clusters[kw["dask"]].scheduler_address}
                t0 = time.perf_counter()
                rep = prepare("bp4d", args.raw, Path(tmp) / f"{i}-{r}.h5", landmarks="shipped", **kw)
                runs[i].append((rep.frames_per_s, time.perf_counter() - t0))
        frames = rep.frames
    for c in clusters.values():
        c.close()
    if args.q100:
        shutil.rmtree(Path(args.raw).parent)
    print(f"| executor ({frames} frames{', warm Dask' if args.warm else ''}) | workers | frames/s (each run) | wall s incl. start |")
    print("|---|---:|---:|---:|")
    for i, (name, kw) in enumerate(SETTINGS):
        n = kw.get("workers") or int(kw["dask"].split(":")[1])
        fps = ", ".join(f"{f:.1f}" for f, _ in runs[i])
        walls = ", ".join(f"{w:.1f}" for _, w in runs[i])
        print(f"| {name} | {n} | {fps} | {walls} |")


if __name__ == "__main__":
    main()
