"""The one device resolver: a `--device` name -> a torch device this machine can use.

Library code follows its inputs' device; only the commands that own a run (bench's trainer,
predict, prepare's GPU decoder) turn a user's name into a device, here, and a name this
machine cannot serve is one clear error before any work.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import torch

TRAINING_KINDS = ("cpu", "cuda")


def resolve_device(name: str, local_rank: int = 0, *, kinds: tuple[str, ...] | None = TRAINING_KINDS,
                   auto: bool = True, select: bool = True) -> "torch.device":
    """`auto` (where allowed): this rank's GPU when CUDA is available, else the CPU; `cuda`:
    this rank's GPU; `cuda:N`, `cpu`, or any torch device type when `kinds` is None. `select`
    makes a CUDA device the current one (a training or predict process)."""
    import torch

    expected = "auto, cpu, cuda or cuda:N" if auto else "e.g. cuda or cuda:1"
    if name == "auto" and auto:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name!r} is not a torch device; expected {expected}") from None
    if kinds is not None and dev.type not in kinds:
        raise ConfigError(f"--device {name!r} is not a device this command runs on; expected {expected}")
    if dev.type != "cuda":
        return dev
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is visible here; use --device cpu"
                          f"{' or auto' if auto else ''}")
    if dev.index is None:
        dev = torch.device("cuda", local_rank)
    if dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if select:
        torch.cuda.set_device(dev)
    return dev


def device_type(name: str) -> str:
    """"cuda" or "cpu": the kind of device `name` resolves to, without selecting it."""
    import torch

    return "cuda" if name != "cpu" and torch.cuda.is_available() else "cpu"
