"""Two processes, one run: gloo DDP on the CPU through `torch.multiprocessing.spawn`."""
from __future__ import annotations

import json

import pytest
import torch
import torch.multiprocessing as mp

from austack.engine.ddp import spawn_worker


@pytest.mark.slow
def test_two_rank_run_completes_and_ranks_agree(tiny_store, tmp_path):
    cfg = dict(backbone="test_tiny", loss="aunce.paper", data=str(tiny_store), folds=[1], epochs=1, batch_size=8,
               lr=3e-3, image_size=40, device="cpu", seed=0, workers=0, out_dir=str(tmp_path / "runs"),
               linear_epochs=2)
    out = str(tmp_path / "rows-{rank}.json")
    mp.spawn(spawn_worker, args=(2, cfg, str(tmp_path / "rendezvous"), out, 1), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rows-{r}.json").read_text()) for r in range(2)]
    for rows in ranks:
        assert len(rows) == 1 and rows[0]["status"] == "ok", rows[0]["error"]
        assert rows[0]["device"].endswith("x2")
    a, b = ranks[0][0], ranks[1][0]
    assert a["f1"] == b["f1"] and a["val_f1_mean"] == b["val_f1_mean"] and a["best_epoch"] == b["best_epoch"]
    # rank 0 alone checkpoints: one run dir, one last.pt
    assert len(list((tmp_path / "runs").rglob("last.pt"))) == 1
    state = torch.load(next((tmp_path / "runs").rglob("last.pt")), weights_only=False)
    assert state["epoch"] == 0
