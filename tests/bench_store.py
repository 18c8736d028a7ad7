"""Measure store image encodings: size on disk and random-access read throughput.

    python tests/bench_store.py [--frames 2000] [--size 256]

Faces are the astronaut photo under small moves (as in the prepare tests), aligned by the real
pipeline, so JPEG sizes are those of real aligned faces. Reads decode to RGB arrays, as
`Store.image` does, in a random order over the whole store (a shuffled DataLoader's pattern).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _prepare_fake import _moved  # noqa: E402

from austack.faces.align import align_face_49, landmarks_68_to_49  # noqa: E402
from austack.store import decode_image, encode_image  # noqa: E402

VARIANTS = {  # name -> (encoding, jpeg quality, chunk rows, compression)
    "jpeg q95, 256 rows/chunk": ("jpeg", 95, 256, None),
    "jpeg q90, 256 rows/chunk": ("jpeg", 90, 256, None),
    "jpeg q95, 1 row/chunk": ("jpeg", 95, 1, None),
    "raw, 1 frame/chunk": ("raw", None, 1, None),
    "raw, 1 frame/chunk, lzf": ("raw", None, 1, "lzf"),
    "raw, 1 frame/chunk, gzip 1": ("raw", None, 1, ("gzip", 1)),
}


def faces(n: int, size: int) -> list[np.ndarray]:
    distinct = []
    for k in range(64):
        img, p68 = _moved(k)
        img = cv2.convertScaleAbs(img, alpha=1 + 0.01 * (k % 7), beta=k % 5)  # vary pixels a little
        distinct.append(align_face_49(img, landmarks_68_to_49(p68), size)[0])
    return [distinct[i % len(distinct)] for i in range(n)]


def run(name, spec, images, folder: Path, reads: int) -> dict:
    encoding, quality, chunk, compression = spec
    path = folder / f"{abs(hash(name))}.h5"
    size = images[0].shape[0]
    t0 = time.perf_counter()
    rows = [encode_image(i, encoding, quality or 95) for i in images]
    with h5py.File(path, "w") as f:
        kw = {}
        if isinstance(compression, tuple):
            kw = {"compression": compression[0], "compression_opts": compression[1]}
        elif compression:
            kw = {"compression": compression}
        if encoding == "jpeg":
            ds = f.create_dataset("images", (len(rows),), dtype=h5py.vlen_dtype(np.uint8), chunks=(chunk,))
            block = np.empty(len(rows), dtype=object)
            for i, row in enumerate(rows):
                block[i] = row
            ds.write_direct(block)
        else:
            ds = f.create_dataset("images", (len(rows), size, size, 3), dtype=np.uint8,
                                  chunks=(chunk, size, size, 3), **kw)
            ds[:] = np.stack(rows)
    write_s = time.perf_counter() - t0
    order = np.random.default_rng(0).integers(0, len(rows), reads)
    with h5py.File(path, "r") as f:
        ds = f["images"]
        t0 = time.perf_counter()
        for i in order:
            decode_image(ds[int(i)], encoding)
        read_s = time.perf_counter() - t0
    return {"name": name, "MB": path.stat().st_size / 1e6, "kB/frame": path.stat().st_size / 1e3 / len(rows),
            "write frames/s": len(rows) / write_s, "random read frames/s": reads / read_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reads", type=int, default=2000)
    args = ap.parse_args()
    images = faces(args.frames, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"| variant | MB ({args.frames} frames) | kB/frame | write frames/s | random read frames/s |")
        print("|---|---:|---:|---:|---:|")
        for name, spec in VARIANTS.items():
            r = run(name, spec, images, Path(tmp), args.reads)
            print(f"| {r['name']} | {r['MB']:.1f} | {r['kB/frame']:.1f} | {r['write frames/s']:.0f} | "
                  f"{r['random read frames/s']:.0f} |")


if __name__ == "__main__":
    main()
