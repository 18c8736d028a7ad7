"""Loss speed at the paper's scale (B=64, 12 AUs, d=512).

pytest runs these once as plain tests (the project's addopts disable timing); to measure:
    python -m pytest tests/test_bench_losses.py --benchmark-enable -s
The loop comparison prints the speed ratio of the vectorised loss over the loop reading of the
spec in tests/loss_reference.py, on the same inputs and draws.
"""
from __future__ import annotations

import time

import pytest
import torch

from austack.losses import aunce_loss, create_loss

from loss_reference import aunce_loop

B, N_AU, D = 64, 12, 512


def inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(B, N_AU, D, generator=g, dtype=dtype)
    z2 = z1 + 0.3 * torch.randn(B, N_AU, D, generator=g, dtype=dtype)
    labels = torch.randint(-1, 2, (B, N_AU), generator=g)
    return z1, z2, labels


@pytest.mark.parametrize("name", ["aunce.paper", "aunce.reference"])
def test_bench_aunce_forward_backward(benchmark, name):
    z1, z2, labels = inputs()
    z1.requires_grad_(True)
    loss = create_loss(name, weights=torch.ones(N_AU))

    def step():
        z1.grad = None
        value = loss(z1, z2, labels)
        value.backward()
        return value

    assert torch.isfinite(benchmark(step))


def test_bench_wce_forward_backward(benchmark):
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(B, N_AU, generator=g).requires_grad_(True)
    labels = torch.randint(-1, 2, (B, N_AU), generator=g)
    loss = create_loss("wce")

    def step():
        probs.grad = None
        value = loss(probs, labels)
        value.backward()
        return value

    assert torch.isfinite(benchmark(step))


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@pytest.mark.slow
def test_vectorised_against_loop_reference_speed_and_value():
    z1, z2, labels = inputs(torch.float64)
    seed = 1
    u = torch.rand((2 * B, N_AU), generator=torch.Generator().manual_seed(seed)).numpy()

    def vectorised(z1=z1, z2=z2):
        return aunce_loss(z1, z2, labels, generator=torch.Generator().manual_seed(seed))

    start = time.perf_counter()
    want = aunce_loop(z1.numpy(), z2.numpy(), labels.numpy(), u=u)
    loop_s = time.perf_counter() - start
    assert vectorised().item() == pytest.approx(want, rel=1e-10)
    fp64_s = _median_seconds(vectorised, 5)
    fp32_s = _median_seconds(lambda: vectorised(z1.float(), z2.float()), 5)
    print(f"\nAUNCE forward at B={B}, n_au={N_AU}, d={D}: loop reference {loop_s * 1e3:.0f} ms, "
          f"vectorised fp64 {fp64_s * 1e3:.1f} ms ({loop_s / fp64_s:.0f}x), "
          f"fp32 {fp32_s * 1e3:.1f} ms ({loop_s / fp32_s:.0f}x), {torch.get_num_threads()} thread(s)")
