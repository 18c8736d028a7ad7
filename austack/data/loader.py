"""A seeded DataLoader over an AUStoreDataset: same seed, same batches; one rank's shard under DDP."""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; numpy and random follow it
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, workers: int = 0, seed: int = 0,
                drop_last: bool = False, distributed: bool = False) -> DataLoader:
    """Batches of (images uint8 [B,3,S,S], labels int8 [B,n_au], rows int64 [B]).

    The shuffle order comes from a generator seeded with `seed` (reseed `loader.generator` per
    epoch), or with `distributed` from a DistributedSampler shard of this rank (call
    `loader.sampler.set_epoch`); without drop_last that sampler pads the last shard by
    repeating rows, which `engine.train.predict` removes. Workers persist across epochs (each
    keeps its store handle open); memory is pinned when CUDA is available.
    """
    if workers > 0:
        from .socket_dir import short_socket_dir

        short_socket_dir()      # else a long TMPDIR hangs the workers (see socket_dir)
    generator = torch.Generator()
    generator.manual_seed(seed)
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last) if distributed else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=workers, generator=generator, worker_init_fn=_seed_worker, drop_last=drop_last,
                      persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
