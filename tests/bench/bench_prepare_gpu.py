"""frames/s of `prepare --device` (nvJPEG decode, batched warp) against one CPU core.

    python tests/bench/bench_prepare_gpu.py [--frames 512] [--device cuda]

On BP4D-size quality-100 frames with shipped landmarks (tests/_bp4d_frames.py): the CPU
path's `process_chunk` on one core (CPU time, best of 2 over the first 64 frames) against
`process_chunk` with the device, in chunks of 256 as prepare cuts them (wall time, after one
warm-up chunk), and the device path's stages. `--device cpu` runs the same code on the CPU.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))
from _bp4d_frames import write_bp4d_frames  # noqa: E402

from austack.prepare import CHUNK_FRAMES, Job, process_chunk  # noqa: E402


def _job(frames, device=None) -> Job:
    return Job(frames, "shipped", 256, 2.9, "jpeg", 95, False, 12, device=device)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def cpu_rate(frames) -> float:
    """Frames per CPU second of the CPU path, best of 2."""
    best = float("inf")
    for _ in range(2):
        t0 = time.process_time()
        process_chunk(_job(frames))
        best = min(best, time.process_time() - t0)
    return len(frames) / best


def device_rate(frames, device: str) -> float:
    chunks = [frames[i:i + CHUNK_FRAMES] for i in range(0, len(frames), CHUNK_FRAMES)]
    process_chunk(_job(chunks[0], device))   # warm-up: CUDA context, nvJPEG handles, kernels
    _sync(device)
    t0 = time.perf_counter()
    for c in chunks:
        r = process_chunk(_job(c, device))
        assert r.rows.face.all(), "a frame left the device path"
    _sync(device)
    return len(frames) / (time.perf_counter() - t0)


def stages(frames, device: str) -> list[tuple[str, float]]:
    """ms per frame of the device path's steps, on one chunk."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    from austack.faces.align import at_scale, decode_scale, similarity_49, to_49
    from austack.prepare.gpu import warp_batch
    from austack.store import encode_image

    c = frames[:CHUNK_FRAMES]
    n = len(c)
    t = [time.perf_counter()]
    files = [torch.from_numpy(np.fromfile(f.source.path, np.uint8)) for f in c]
    t.append(time.perf_counter())
    decoded = []
    for i in range(0, n, 32):
        decoded += decode_jpeg(files[i:i + 32], mode=ImageReadMode.RGB, device=device)
    _sync(device)
    t.append(time.perf_counter())
    ms = [similarity_49(to_49(f.landmarks), 256, 2.9) for f in c]
    faces = []
    for i in range(0, n, 32):
        r = decode_scale(ms[i])
        batch = torch.nn.functional.avg_pool2d(torch.stack(decoded[i:i + 32]).float(), r, ceil_mode=True)
        faces.append(warp_batch(batch, np.stack([at_scale(m, r) for m in ms[i:i + 32]]), 256)
                     .permute(0, 2, 3, 1).cpu().numpy())
    t.append(time.perf_counter())
    for f in np.concatenate(faces):
        encode_image(f, "jpeg", 95)
    t.append(time.perf_counter())
    names = ["read files (host)", "decode_jpeg on the device", "pool + warp + copy to host", "JPEG-encode (host)"]
    return [(name, 1e3 * (b - a) / n) for name, a, b in zip(names, t, t[1:])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        frames = write_bp4d_frames(Path(tmp), args.frames)
        cpu = cpu_rate(frames[:64])
        dev = device_rate(frames, args.device)
        print(f"| {args.frames} frames 1392x1040 q100, 256 px | frames/s |")
        print("|---|---:|")
        print(f"| CPU path, one core (CPU time) | {cpu:.1f} |")
        print(f"| --device {args.device} (wall, chunks of {CHUNK_FRAMES}) | {dev:.1f} |")
        print(f"| ratio | {dev / cpu:.2f}x |")
        print()
        print("| device path, one chunk | ms/frame |")
        print("|---|---:|")
        for name, ms in stages(frames, args.device):
            print(f"| {name} | {ms:.2f} |")


if __name__ == "__main__":
    main()
