"""Where a GPU training step spends its time: each stage timed alone, the top CUDA kernels of a
whole step, and the step with the encoder under torch.compile.

    python tests/bench/profile_train_step.py --backbone resnet50 --loss wce [--compile] [--trace DIR]

Stages, each timed over --steps runs with CUDA events (medians, ms): the batch copy and
augmentation, the bf16 forward, forward + backward, and the fused AdamW step. Uses the same step
as `test_bench_train_step_cuda.py` (batch 64 of 256 px uint8 faces -> 224 px views).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_bench_train_step_cuda import BATCH, LOSSES, AustackStep  # noqa: E402

from austack.engine.train import autocast_for, to_device  # noqa: E402


def cuda_median_ms(fn, steps: int) -> float:
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def stage_times(backbone: str, loss_name: str, policy: str, steps: int) -> dict[str, float]:
    step = AustackStep(backbone, loss_name, policy)
    encoder, augment, loss_fn = step.encoder, step.augment, step.loss_fn
    images, labels, device = step.images, step.labels, step.device
    x, _ = to_device(images, labels, device)
    views = torch.cat(list(augment(x))) if loss_fn.views == 2 else augment(x)
    views = views.contiguous(memory_format=torch.channels_last)

    def forward():
        with torch.no_grad(), autocast_for(device):
            encoder(views)

    def forward_backward():
        with autocast_for(device):
            out = encoder(views)
        out.embeddings.float().sum().add(out.probs.float().sum()).backward()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    return {
        "copy + augment": cuda_median_ms(lambda: augment(to_device(images, labels, device)[0]), steps),
        "forward (bf16, no grad)": cuda_median_ms(forward, steps),
        "forward + backward": cuda_median_ms(forward_backward, steps),
        "AdamW (fused)": cuda_median_ms(step.optimizer.step, steps),
        "whole step": cuda_median_ms(step, steps),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--loss", default="wce", choices=[name for name, _ in LOSSES])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="also time the step with torch.compile(encoder)")
    ap.add_argument("--trace", type=Path, help="write a chrome trace of one step here")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    policy = dict(LOSSES)[args.loss]

    print(f"== {args.backbone} {args.loss}: stage medians over {args.steps} runs, batch {BATCH}")
    for name, ms in stage_times(args.backbone, args.loss, policy, args.steps).items():
        print(f"{name:28} {ms:8.2f} ms")

    step = AustackStep(args.backbone, args.loss, policy)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=60))
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(args.trace / f"{args.backbone}-{args.loss}.json"))

    if args.compile:
        import time
        step = AustackStep(args.backbone, args.loss, policy, compile=True)
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        print(f"torch.compile: first step (compilation) {time.perf_counter() - t0:.1f} s")
        for _ in range(3):
            step()
        print(f"{'whole step, compiled':28} {cuda_median_ms(step, args.steps):8.2f} ms")


if __name__ == "__main__":
    main()
