"""pytest-benchmark of one training step (augment on the device, forward, loss, backward, AdamW).

Runs in CI with --benchmark-disable (one step each, as a smoke test); time it with
    python -m pytest tests/bench/test_bench_train_step.py --benchmark-enable
On a GPU the same step runs under bf16 autocast with channels_last inputs (`austack.engine.train`).
"""
import pytest
import torch

from austack.data import BatchAugment
from austack.engine.train import loss_on_batch
from austack.losses import create_loss
from austack.models import create_encoder

BATCH, SIZE, CROP, N_AU = 16, 72, 64, 12


@pytest.mark.benchmark(group="train-step")
@pytest.mark.parametrize("loss_name,policy", [("wce", "basic"), ("aunce.paper", "simclr")])
def test_bench_train_step(benchmark, loss_name, policy):
    torch.manual_seed(0)
    encoder = create_encoder("test_tiny", N_AU)
    loss_fn = create_loss(loss_name)
    loss_fn.set_rates(torch.full((N_AU,), 0.3))
    augment = BatchAugment.from_policy(policy, CROP, views=loss_fn.views, seed=0)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    images = torch.randint(0, 256, (BATCH, 3, SIZE, SIZE), dtype=torch.uint8)
    labels = torch.randint(0, 2, (BATCH, N_AU), dtype=torch.int8)

    def step():
        loss = loss_on_batch(encoder, loss_fn, augment, images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    loss = benchmark(step)
    assert torch.isfinite(loss)
