"""Host-to-device copies that do not make the host wait.

A copy from ordinary (pageable) host memory to a GPU blocks the Python thread until the GPU has
caught up, which in a training loop means the GPU idles while Python launches the next kernels.
Copies from pinned memory are asynchronous. Random draws made on a host generator (so that CPU
and GPU runs draw the same numbers) go through here.
"""
from __future__ import annotations

import torch


def host_to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`t` (on the host) on `device`; through pinned memory and asynchronous when it is a GPU."""
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
