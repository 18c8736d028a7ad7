"""Two processes, one run: gloo DDP on the CPU, each rank with its own output folder."""
from __future__ import annotations

import json

import pytest
import torch.multiprocessing as mp

from ddp_worker import run_rank


def spawn(cfg: dict, tmp_path, tag: str) -> list[dict]:
    out = str(tmp_path / f"rows-{tag}-{{rank}}.json")
    mp.spawn(run_rank, args=(2, cfg, str(tmp_path / f"rendezvous-{tag}"), out), nprocs=2, join=True)
    return [json.loads((tmp_path / f"rows-{tag}-{r}.json").read_text())[0] for r in range(2)]


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["wce", "aunce.paper"])
def test_two_ranks_agree_and_resume_without_a_shared_folder(tiny_store, tmp_path, loss):
    cfg = dict(backbone="test_tiny", loss=loss, data=str(tiny_store), folds=[1], epochs=2, batch_size=8,
               lr=3e-3, image_size=40, device="cpu", seed=0, workers=0, out_dir=str(tmp_path / "runs"),
               linear_epochs=2)
    a, b = spawn(cfg, tmp_path, "full")
    for row in (a, b):
        assert row["status"] == "ok", row["error"]
        assert row["device"].endswith("x2")
    assert a["f1"] == b["f1"] and a["val_f1_mean"] == b["val_f1_mean"] and a["best_epoch"] == b["best_epoch"]
    # rank 0 alone writes: rank 1's folder holds no checkpoint
    assert len(list((tmp_path / "runs" / "rank0").rglob("last.pt"))) == 1
    assert not list((tmp_path / "runs" / "rank1").rglob("*.pt"))
    # a second run over the same folders resumes on rank 0's files and gives the same numbers
    again = spawn(cfg, tmp_path, "again")
    assert [r["f1"] for r in again] == [a["f1"], a["f1"]]
