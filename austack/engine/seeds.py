"""Every random stream of a run, from one helper with named purposes.

`seed_for(base, "loader", fold=2, epoch=3)` is an independent 31-bit seed for that purpose of
that fold and epoch (and rank). The purpose is hashed into the key and every key has the same
length, so no two purposes or positions can collide (numpy's SeedSequence treats [a, b] and
[a, b, 0] alike, which is why keys are never of varying length here).
"""
from __future__ import annotations

import random
import zlib

import numpy as np
import torch

PURPOSES = (
    "init",            # encoder weights and the fold's global RNGs before training
    "loader",          # the training split's shuffle order
    "epoch",           # the global RNGs at the start of each epoch
    "loss",            # a loss's own generator (AUNCE's positive types)
    "augment",         # the training views
    "probe",           # linear-probe head initialisation and batch order
    "probe_augment",   # linear-probe training views (--linear-augment)
    "noise",           # label noise of a noise study (--label-noise)
)


def seed_for(base: int, purpose: str, *, fold: int = 0, epoch: int = 0, rank: int = 0) -> int:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown seed purpose {purpose!r}; expected one of {', '.join(PURPOSES)}")
    key = [int(base) & 0xFFFFFFFF, zlib.crc32(purpose.encode()), int(fold), int(epoch), int(rank)]
    return int(np.random.SeedSequence(key).generate_state(1)[0] & 0x7FFFFFFF)


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
