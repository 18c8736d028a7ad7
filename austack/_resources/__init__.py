"""Where the data files that ship with austack live once installed.

`protocols/` and `baselines/` sit at the repository's top level and install as
`austack._resources.protocols` and `austack._resources.baselines` (see setup.py).
"""
from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path


@cache
def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(f"austack._resources.{name}")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"austack is installed without its {name}/ data folder; reinstall it with pip")
    return Path(next(iter(spec.submodule_search_locations)))


def protocols_dir() -> Path:
    """The folder of versioned fold protocols (`protocols/` in the repository)."""
    return _package_dir("protocols")


def baselines_dir() -> Path:
    """The folder of published results and benchmark recipes (`baselines/` in the repository)."""
    return _package_dir("baselines")
