"""`last.pt`: everything a fold needs to continue exactly where it stopped.

One file per run dir, rewritten after every epoch: model, optimizer, lr scheduler, the last
finished epoch, the history so far, the regime's state (its best epoch), every RNG state
(python, numpy, torch, cuda) and the config hash. It holds only tensors and plain values and
is loaded with `weights_only=True`: resuming from a run dir someone else made never runs code
from it. It is written atomically (`austack.fileio`), so a kill mid-write leaves the previous
`last.pt` intact and no stray temporary file.

A run dir is named by its config hash (`RunContext.run_dir`), so a `last.pt` of another config
is found only when a file was moved by hand; it is refused, since mixing two recipes in one
run dir would silently produce a result of neither.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..fileio import atomic_torch_save
from ..runs.rundir import CHECKPOINT_NAME



def rng_states() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(run_dir: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, epoch: int, history: list[dict[str, Any]], config_hash: str,
                    regime: dict[str, Any]) -> Path:
    """Write `<run_dir>/last.pt` atomically; `epoch` is the last finished epoch (0-based)."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch, "history": history, "regime": regime, "rng": rng_states(),
        "config_hash": config_hash,
    }
    return atomic_torch_save(state, Path(run_dir) / CHECKPOINT_NAME)


def load_for_resume(run_dir: str | Path, config_hash: str) -> dict[str, Any] | None:
    """The checkpoint in `run_dir` if it belongs to this config; None if there is none.

    Raises ConfigError when the file is not a readable checkpoint or belongs to another config.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # a foreign pickle or a torn file: never executed, never guessed at
        raise ConfigError(f"{path} is not a checkpoint this austack can resume from ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:120]}); delete it to start the fold over", path=path) from None
    if not isinstance(state, dict) or state.get("config_hash") != config_hash:
        got = state.get("config_hash") if isinstance(state, dict) else None
        raise ConfigError(f"{path} belongs to another run config (hash {got} vs {config_hash}); pass a "
                          f"different --out-dir, or delete {path} to start over", path=path)
    return state


def restore(state: dict[str, Any], *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any) -> None:
    """Load a checkpoint's model/optimizer/scheduler and RNG states in place."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    set_rng_states(state["rng"])
