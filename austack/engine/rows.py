"""A fold's result row, built once from the run's identity and the fold's outcome (shared by
the fold itself, `bench`, and its cross-dataset scoring, `cross`)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import torch

from ..results.identity import RESULTS_VERSION
from ..results.schema import ResultRow
from .context import RunContext
from .provenance import device_name


def make_row(run: RunContext, k: int, t0: float, **outcome: Any) -> ResultRow:
    """The fold's ResultRow, built once from the run's identity and the fold's outcome."""
    cfg, store = run.cfg, run.store
    return ResultRow(
        dataset=store.dataset, protocol=run.protocol.id, protocol_hash=run.protocol.hash, store=store.path,
        store_checksum=store.identity, fold=k, backbone=cfg.backbone, loss=cfg.loss,
        loss_options=dict(cfg.loss_options), seed=cfg.seed, epochs=cfg.epochs, config=cfg.to_dict(),
        aus=run.aus, pretrained=None if run.weights.is_random else run.weights.label,
        comparable=cfg.limit_train is None and not random_paper_recipe(run),
        device=device_name(run.device), austack_version=run.provenance["austack"],
        torch_version=torch.__version__, git_sha=run.provenance.get("git_commit"),
        run_dir=str(run.run_dir(k)), created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config_hash=run.config_hash, synthetic=store.synthetic, label_noise=cfg.label_noise,
        provenance={**run.provenance, "results_version": RESULTS_VERSION, "store_label_noise": store.label_noise},
        wall_s=time.perf_counter() - t0, **outcome)


def random_paper_recipe(run: RunContext) -> bool:
    """A paper recipe (`table*`) run from random weights (`--pretrained none`): its rows do not
    compare with the published ones, which all started from pretrained weights."""
    from ..runs.recipes import is_paper_recipe
    return run.weights.is_random and is_paper_recipe(run.cfg.recipe)


def error_row(run: RunContext, k: int, message: str, t0: float) -> ResultRow:
    return make_row(run, k, t0, status="error", error=message)
