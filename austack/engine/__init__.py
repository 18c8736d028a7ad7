"""Training and evaluation: `run_bench(BenchConfig) -> list[ResultRow]`.

`bench` runs a recipe fold by fold; `train` holds the epoch loop and prediction; `linear_eval`
scores a frozen encoder with per-AU linear heads; `checkpoint` writes and resumes `last.pt`;
`ddp` spreads one run over several processes (torchrun or `torch.multiprocessing.spawn`).
Submodules import torch lazily from here, so `from austack.engine import BenchConfig` is cheap.
"""
from .config import BenchConfig

__all__ = ["BenchConfig", "run_bench"]


def __getattr__(name):
    if name == "run_bench":
        from .bench import run_bench
        return run_bench
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
