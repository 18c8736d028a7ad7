"""Where a result came from: library versions, the weights' content, the source tree's state."""
from __future__ import annotations

import importlib.metadata
import platform
import resource
import subprocess
from pathlib import Path

import torch

from .. import __version__
from . import ddp

# Distributions whose versions can change a number austack records.
VERSIONED = {"torch": "torch", "torchvision": "torchvision", "timm": "timm", "numpy": "numpy",
             "opencv": "opencv-python-headless", "dlib": "dlib-bin", "h5py": "h5py"}


def package_versions() -> dict[str, str | None]:
    out = {}
    for name, dist in VERSIONED.items():
        try:
            out[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the austack source tree when it is a git checkout, else (None, None)."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head.stdout.strip() or None, bool(dirty.stdout.strip()) if dirty.returncode == 0 else None


def provenance(weights=None) -> dict:
    """Versions, git state and the weights a run started from (a `ResolvedWeights`: tag or path,
    the resolved file, its sha256 and size)."""
    commit, dirty = git_state()
    record = None if weights is None else weights.to_dict()
    return {"austack": __version__, "versions": package_versions(),
            "pretrained_sha256": None if weights is None else weights.sha256, "weights": record,
            "git_commit": commit, "git_dirty": dirty, "python": platform.python_version()}


def device_name(device: torch.device) -> str:
    world = ddp.current().world_size
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return f"{name} x{world}" if world > 1 else name


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory on CUDA; on the CPU the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if platform.system() != "Darwin" else kb / 2**20
