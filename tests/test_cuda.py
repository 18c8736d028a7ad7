"""GPU correctness: the CUDA paths compute what the CPU paths compute, and the training step never
waits for the GPU. Skipped without a CUDA device (CI has none; run them on a lent GPU with
`python -m pytest tests/test_cuda.py`)."""
from __future__ import annotations

import math

import pytest
import torch
from rich.console import Console

from austack.data import BatchAugment
from austack.engine import BenchConfig, run_bench
from austack.engine.train import loss_on_batch, to_device
from austack.losses import create_loss
from austack.models import create_encoder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

N_AU = 12


@pytest.fixture
def exact_fp32():
    """fp32 convolutions and matmuls without TF32, so GPU and CPU results agree to rounding."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def _images(b=8, size=80, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, size, size), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("policy", ["simclr", "basic"])
def test_batch_augment_cuda_matches_cpu(exact_fp32, policy):
    images = _images()
    cpu = BatchAugment.from_policy(policy, 64, views=2, seed=3)
    gpu = BatchAugment.from_policy(policy, 64, views=2, seed=3).cuda()
    for _ in range(3):   # several draws: blur, grayscale and jitter each come up
        for a, b in zip(cpu(images), gpu(images.cuda())):
            assert b.device.type == "cuda"
            torch.testing.assert_close(b.cpu(), a, atol=1e-4, rtol=1e-4)
    cpu.eval(), gpu.eval()
    torch.testing.assert_close(gpu(images.cuda()).cpu(), cpu(images), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("loss_name,policy", [("wce", "basic"), ("aunce.paper", "simclr")])
def test_training_step_never_waits_for_the_gpu(loss_name, policy):
    """No host-device synchronisation inside a step: augment, bf16 forward, loss, backward,
    gradient clipping and fused AdamW run under torch's sync debug mode set to raise on any
    synchronising call."""
    torch.manual_seed(0)
    device = torch.device("cuda")
    encoder = create_encoder("resnet18", N_AU).to(device, memory_format=torch.channels_last)
    loss_fn = create_loss(loss_name).to(device)
    loss_fn.set_rates(torch.full((N_AU,), 0.3))
    augment = BatchAugment.from_policy(policy, 64, views=loss_fn.views, seed=0).to(device)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-4, fused=True)
    images = _images(16).pin_memory()
    labels = torch.randint(-1, 2, (16, N_AU), dtype=torch.int8).pin_memory()

    def step():
        x, y = to_device(images, labels, device)
        loss = loss_on_batch(encoder, loss_fn, augment, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)   # as train_one_epoch with grad_clip
        optimizer.step()
        return loss.detach()

    step()   # first step outside the check: cuDNN/cuBLAS handles and optimizer state are created
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [step() for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(math.isfinite(v.item()) for v in losses)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in encoder.parameters())


@pytest.mark.parametrize("backbone", ["resnet18", "swin_tiny_patch4_window7_224"])
def test_bf16_autocast_forward_matches_fp32(exact_fp32, backbone):
    """The trainer's bf16 autocast forward stays within bf16 rounding of the fp32 forward."""
    torch.manual_seed(0)
    encoder = create_encoder(backbone, N_AU).cuda().eval()
    x = torch.randn(4, 3, 224, 224, device="cuda")
    with torch.no_grad():
        ref = encoder(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = encoder(x.contiguous(memory_format=torch.channels_last))
    for name in ("embeddings", "probs"):
        a, b = getattr(ref, name).float(), getattr(low, name).float()
        rel = (a - b).norm() / a.norm()
        # bf16 keeps 8 significant bits: ~4e-3 per operation, a few 1e-2 after a randomly
        # initialised deep network (measured on an H100: 4.0e-2 for swin_tiny's embeddings)
        assert rel < 8e-2, f"{name}: relative error {rel:.2e} under bf16"


def test_aunce_gradients_cuda_match_cpu(exact_fp32):
    """AUNCE forward and backward on the GPU equal the CPU's for the same draws."""
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(32, N_AU, 64, generator=g), torch.randn(32, N_AU, 64, generator=g)
    labels = torch.randint(-1, 2, (32, N_AU), generator=g).to(torch.int8)
    grads = []
    for device in ("cpu", "cuda"):
        loss_fn = create_loss("aunce.paper", seed=5).to(device)
        loss_fn.set_rates(torch.full((N_AU,), 0.3))
        a = z1.detach().clone().to(device).requires_grad_()
        b = z2.detach().clone().to(device).requires_grad_()
        loss = loss_fn(a, b, labels.to(device))
        loss.backward()
        grads.append((loss.detach().cpu(), a.grad.cpu(), b.grad.cpu()))
    for cpu, gpu in zip(*grads):
        torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("loss", ["wce", "aunce.paper"])
def test_bench_on_cuda_end_to_end(tiny_store, tmp_path, loss):
    cfg = BenchConfig(backbone="test_tiny", loss=loss, data=str(tiny_store), folds=(1,), epochs=2, batch_size=16,
                      lr=3e-3, image_size=40, device="cuda", seed=0, workers=2, out_dir=str(tmp_path / "runs"),
                      db=str(tmp_path / "r.sqlite"), linear_epochs=2)
    (row,) = run_bench(cfg, console=Console(quiet=True))
    assert row.status == "ok", row.error
    assert row.device == torch.cuda.get_device_name()
    assert row.peak_mem_mb and row.peak_mem_mb > 0
    assert row.images_per_s and row.images_per_s > 0
    assert len(row.f1) == N_AU and all(0.0 <= f <= 1.0 for f in row.f1)
