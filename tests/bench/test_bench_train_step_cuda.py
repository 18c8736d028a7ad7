"""Training step on a GPU: austack's step against an fp32 baseline step, same model, same GPU, same run.

    python -m pytest tests/bench/test_bench_train_step_cuda.py --benchmark-enable \
        --benchmark-json=step.json

Both take a batch of BATCH face images and do forward, loss, backward and one optimizer step.

- `baseline`, the way published AU trainers run: the model in fp32 (PyTorch's default TF32 settings),
  NCHW, AdamW with its default (foreach) implementation. The views come from host DataLoader
  workers as normalised float32 tensors (made before timing, as in that trainer where workers
  overlap with the GPU) and are copied to the GPU from pinned memory each step. `loss.item()` is
  read every step for the running average.
- `austack`, what `austack.engine.train` does: the uint8 source images are copied to the GPU, and
  `BatchAugment` makes the views there (crop, flip and, for AUNCE, the SimCLR colour and blur
  distortions). Then a bf16 autocast forward in channels_last, fused AdamW, and no host sync.

cuDNN autotuning is on for both, as `austack bench` sets it. A timed round is STEPS steps followed
by one synchronisation. images/s (source images, not views) and peak memory go into each
benchmark's extra_info. Skipped without CUDA.
"""
from __future__ import annotations

import pytest
import torch

from austack.data import BatchAugment
from austack.engine.train import loss_on_batch, to_device
from austack.losses import create_loss
from austack.models import create_encoder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

BATCH, SOURCE, CROP, N_AU, STEPS = 64, 256, 224, 12, 5
BACKBONES = ["resnet50", "swin_base_patch4_window7_224"]
LOSSES = [("wce", "basic"), ("aunce.paper", "simclr")]


@pytest.fixture(autouse=True)
def cudnn_autotune():
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    yield
    torch.backends.cudnn.benchmark = before
    torch.cuda.empty_cache()   # the last test's model is gone: give its memory back before the next


def _setup(backbone: str, loss_name: str, channels_last: bool):
    torch.manual_seed(0)
    encoder = create_encoder(backbone, N_AU).cuda()
    if channels_last:
        encoder = encoder.to(memory_format=torch.channels_last)
    loss_fn = create_loss(loss_name).cuda()
    loss_fn.set_rates(torch.full((N_AU,), 0.3))
    labels = torch.randint(0, 2, (BATCH, N_AU), dtype=torch.int8).pin_memory()
    return encoder, loss_fn, labels


def _baseline_step(backbone: str, loss_name: str, policy: str):
    encoder, loss_fn, labels = _setup(backbone, loss_name, channels_last=False)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-4)
    host_aug = BatchAugment.from_policy(policy, CROP, views=loss_fn.views, seed=0)
    views = host_aug(torch.randint(0, 256, (BATCH, 3, SOURCE, SOURCE), dtype=torch.uint8))
    views = torch.cat(list(views)) if isinstance(views, tuple) else views
    views = views.pin_memory()
    seen = []

    def step():
        x, y = views.cuda(), labels.cuda()
        out = encoder(x)
        if loss_fn.takes == "probs":
            loss = loss_fn(out.probs, y)
        else:
            loss = loss_fn(out.embeddings[:BATCH], out.embeddings[BATCH:], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen.append(loss.item())   # the running-average meter: a host sync every step

    return encoder, step


class AustackStep:
    """What `austack.engine.train` does per batch, with its parts exposed for profiling."""

    def __init__(self, backbone: str, loss_name: str, policy: str, compile: bool = False):
        self.encoder, self.loss_fn, labels = _setup(backbone, loss_name, channels_last=True)
        self.model = torch.compile(self.encoder) if compile else self.encoder
        self.optimizer = torch.optim.AdamW(self.encoder.parameters(), lr=1e-4, fused=True)
        self.augment = BatchAugment.from_policy(policy, CROP, views=self.loss_fn.views, seed=0).cuda()
        self.images = torch.randint(0, 256, (BATCH, 3, SOURCE, SOURCE), dtype=torch.uint8).pin_memory()
        self.labels, self.device = labels, torch.device("cuda")
        self.total = torch.zeros((), device=self.device)

    def __call__(self) -> None:
        x, y = to_device(self.images, self.labels, self.device)
        loss = loss_on_batch(self.model, self.loss_fn, self.augment, x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.total.add_(loss.detach())


def _austack_step(backbone: str, loss_name: str, policy: str):
    step = AustackStep(backbone, loss_name, policy)
    return step.encoder, step


@pytest.mark.benchmark(group="train-step-cuda")
@pytest.mark.parametrize("mode", ["baseline", "austack"])
@pytest.mark.parametrize("loss_name,policy", LOSSES)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_bench_train_step_cuda(benchmark, backbone, loss_name, policy, mode):
    make = _baseline_step if mode == "baseline" else _austack_step
    encoder, step = make(backbone, loss_name, policy)

    def steps():
        for _ in range(STEPS):
            step()
        torch.cuda.synchronize()

    steps()   # autotuning and allocator warm-up
    torch.cuda.reset_peak_memory_stats()
    benchmark.pedantic(steps, rounds=4, warmup_rounds=1, iterations=1)
    benchmark.extra_info["peak_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if benchmark.stats is not None:   # None under --benchmark-disable
        benchmark.extra_info["images_per_s"] = round(STEPS * BATCH / benchmark.stats.stats.median, 1)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in encoder.parameters())
