"""`last.pt`: everything a run needs to continue exactly where it stopped.

One file per run dir, rewritten after every epoch: model, optimizer, grad scaler, lr scheduler,
the next epoch, the history so far, every RNG state (python, numpy, torch, cuda), the resolved
config and the protocol hash. It is written to a temp file in the same folder and renamed, so a
kill mid-write leaves the previous `last.pt` intact.

Resume is automatic: a run dir holding a `last.pt` whose config hash equals the run's continues
from it; one with another hash is refused, since mixing two recipes in one run dir would
silently produce a result of neither.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError

CHECKPOINT_NAME = "last.pt"

# Config keys that change where or how fast a run goes, never what it computes.
_NOT_HASHED = ("workers", "db", "out_dir", "recipe", "folds", "device")


def config_hash(config: dict[str, Any], protocol_hash: str) -> str:
    """12-hex hash of the settings that define a fold's result (plus the protocol's hash)."""
    kept = {k: v for k, v in config.items() if k not in _NOT_HASHED}
    blob = json.dumps({"config": kept, "protocol": protocol_hash}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def rng_states() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(run_dir: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: Any, scheduler: Any, epoch: int, history: list[dict[str, Any]],
                    config: dict[str, Any], protocol_hash: str, best: dict[str, Any] | None = None) -> Path:
    """Write `<run_dir>/last.pt` atomically; `epoch` is the last finished epoch (0-based)."""
    run_dir = Path(run_dir)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "history": history,
        "best": best,
        "rng": rng_states(),
        "config": config,
        "protocol_hash": protocol_hash,
        "config_hash": config_hash(config, protocol_hash),
    }
    fd, tmp = tempfile.mkstemp(prefix=".last-", suffix=".pt.tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, run_dir / CHECKPOINT_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return run_dir / CHECKPOINT_NAME


def load_for_resume(run_dir: str | Path, config: dict[str, Any], protocol_hash: str) -> dict[str, Any] | None:
    """The checkpoint in `run_dir` if it belongs to this config; None if there is none.

    Raises ConfigError when the run dir holds a checkpoint of a different config.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    # weights_only=False: the file holds RNG states and the config, written by this module.
    state = torch.load(path, map_location="cpu", weights_only=False)
    want = config_hash(config, protocol_hash)
    if state.get("config_hash") != want:
        changed = sorted(k for k in set(config) | set(state.get("config", {}))
                         if k not in _NOT_HASHED and config.get(k) != state.get("config", {}).get(k))
        detail = f" (changed: {', '.join(changed)})" if changed else " (protocol changed)"
        raise ConfigError(f"{path} belongs to another run config (hash {state.get('config_hash')} vs "
                          f"{want}){detail}; pass a different --out-dir, or delete {path} to start over",
                          path=path)
    return state


def restore(state: dict[str, Any], *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scaler: Any, scheduler: Any) -> None:
    """Load a checkpoint's model/optimizer/scaler/scheduler and RNG states in place."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    set_rng_states(state["rng"])
