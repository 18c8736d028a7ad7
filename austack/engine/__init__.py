"""Training and evaluation: `run_bench(BenchConfig) -> list[ResultRow]`, `run_and_record`.

The stages of a fold, each a small module: `context` (the run and the fold's parts), `fit`
(the epoch loop and resume), `regimes` (how a loss's training becomes a detector, declared by
the loss), `bench` (evaluate, score, one row per fold), `record` (into the results database).
`cross` scores each fold's detector on other stores (`--test-data`). `train` holds one pass
over a loader; `checkpoint` the resume state (the run-dir format is `austack.runs`); `seeds`
every random stream; `ddp` spreads one run over several processes (torchrun).
Submodules import torch lazily from here, so `from austack.engine import BenchConfig` is cheap.
"""
from ..runs.config import BenchConfig

__all__ = ["BenchConfig", "run_bench", "run_and_record"]


def __getattr__(name):
    if name == "run_bench":
        from .bench import run_bench
        return run_bench
    if name == "run_and_record":
        from .record import run_and_record
        return run_and_record
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
