"""Entry point for `torch.multiprocessing.spawn` in the DDP tests: one rank of a gloo run.

Each rank gets its own output folder, as ranks on different machines would: nothing may
depend on a filesystem the ranks share.
"""
from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist


def run_rank(rank: int, world_size: int, config: dict, init_file: str, out_file: str) -> None:
    from rich.console import Console

    from austack.engine import BenchConfig, run_bench

    torch.set_num_threads(1)
    cfg = BenchConfig.from_dict({**config, "out_dir": f"{config['out_dir']}/rank{rank}"})
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        rows = run_bench(cfg, console=Console(quiet=True))
        with open(out_file.format(rank=rank), "w", encoding="utf-8") as f:
            json.dump([r.to_dict() for r in rows], f)
        # Both ranks get here before either tears gloo down: a rank destroying its group
        # while the other still ran aborted once under load ("terminate called without an
        # active exception", SIGABRT). Not in `finally`: after a failure it would wait forever.
        dist.barrier()
    finally:
        dist.destroy_process_group()
