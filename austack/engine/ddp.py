"""Several processes, one run: DistributedDataParallel helpers for the trainer.

`austack bench` run under `torchrun --nproc-per-node N` (or `--nnodes N` across machines)
trains one model on N devices: each rank reads its own shard of every split
(DistributedSampler), gradients are averaged by DDP, rank 0 alone logs, checkpoints and writes
results, and every rank computes the same metrics from predictions gathered from all ranks.
Rank 0 reads the files a rank needs (the resume state, the best weights) and broadcasts them,
so the ranks share no filesystem.

AUNCE draws its positives and negatives from the batch, so each rank gathers the embeddings
and labels of all ranks' batches (`gather_with_grad`): pairs come from the global batch, and
the gradient reaches the local part only, as each rank's model saw only its own images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> DistInfo:
    """This process's place in the process group (a single process when there is none)."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return DistInfo(dist.get_rank(), dist.get_world_size(), local)
    return DistInfo()


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (WORLD_SIZE > 1).

    NCCL for CUDA, gloo for CPU. A process group that already exists (spawned workers) is
    kept as it is. Without torchrun's variables this is a single process and nothing happens.
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return current()


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every rank along dim 0, in rank order; only the local slice keeps
    its gradient (the others are constants here, and get their gradient on their own rank)."""
    info = current()
    if not info.enabled:
        return x
    parts = [torch.empty_like(x) for _ in range(info.world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[info.rank] = x
    return torch.cat(parts, dim=0)


def gather_variable(x: torch.Tensor) -> torch.Tensor:
    """Concatenate tensors whose first dimension differs between ranks (no gradient)."""
    info = current()
    if not info.enabled:
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(info.world_size)]
    dist.all_gather(sizes, n)
    sizes = [int(s.item()) for s in sizes]
    padded = torch.zeros((max(sizes), *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)], dim=0)


def barrier() -> None:
    if current().enabled:
        dist.barrier()


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank. DDP sends them at each
    forward, but the last training step leaves each rank with statistics of its own batch:
    without this, ranks would evaluate (and save) slightly different models."""
    if current().enabled:
        for buf in module.buffers():
            dist.broadcast(buf, src=0)


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (a message, a decision)."""
    if not current().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(model: torch.nn.Module, device: torch.device, *, find_unused: bool = False) -> torch.nn.Module:
    """DistributedDataParallel around `model` when there are several ranks, else `model`.

    `find_unused`: some parameters get no gradient from the loss (AUNCE ignores the classifier
    vectors that only make `probs`), so DDP must not wait for them.
    """
    if not current().enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)
