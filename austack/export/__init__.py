"""A prepared store written out as the files other AU codebases train from (docs/export.md).

`export(store_path, fmt, out)` writes the aligned faces as image files plus the list files the
target's own loader reads, per fold of the store's protocol, and `out/austack-export.json`
(store identity, protocol and hash, label rule, unknown encoding, camera, crop geometry, the
subjects of every list). One module per format, each with one `export` function.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from ..errors import ConfigError, did_you_mean
from ..store import open_store
from . import csv_lists, fmae, jaanet, megraphau
from ._common import SIDECAR, ExportReport

FORMATS: dict[str, Callable] = {"megraphau": megraphau.export, "jaanet": jaanet.export, "fmae": fmae.export,
                                "csv": csv_lists.export}


def export(store_path: str | os.PathLike, fmt: str, out: str | os.PathLike, *, folds: Sequence[int] | None = None,
           force: bool = False, progress: bool | None = None) -> ExportReport:
    """Write `fmt` files for the store's protocol (all folds, or `folds`) into the folder `out`."""
    from ._common import prepare_out

    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}{did_you_mean(fmt, FORMATS)}; "
                          f"expected one of {', '.join(FORMATS)}")
    with open_store(store_path) as store:
        protocol = store.protocol()
        for k in folds or ():
            protocol.fold(k)   # an unknown fold fails before anything is written
        target = prepare_out(Path(out), force)
        return FORMATS[fmt](store, protocol, target, folds=folds, progress=progress)


__all__ = ["FORMATS", "SIDECAR", "ExportReport", "export"]
