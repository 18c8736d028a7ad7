"""A torch Dataset over one protocol/fold/split of a prepared HDF5 store (docs/store-schema.md).

Construction reads only the small per-frame columns (subject, split, labels) and closes the
file; the images are read through a handle opened lazily by each process that indexes the
dataset (each DataLoader worker its own), so the dataset pickles before and after use.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..labels import occurrence_rates
from ..protocols import Protocol
from ..store import Store, open_store


class AUStoreDataset(Dataset):
    """Items are (image uint8 [3, S, S] RGB, labels int8 [n_au] with -1 unknown, store row).

    protocol: a protocol id or object; default the store's own (it must score the store's AUs).
    fold, split: which rows; "val" is drawn from the fold's training subjects (never its test).
    limit: keep this many rows, evenly spaced over the selection (debug runs: not comparable).
    """

    def __init__(self, path: str | os.PathLike, *, protocol: str | Protocol | None = None, fold: int = 1,
                 split: str = "train", limit: int | None = None):
        self.path = Path(path).expanduser().resolve()
        self.fold, self.split = fold, split
        with open_store(self.path) as store:
            self.protocol = store.protocol(protocol)
            rows = store.get_subset(self.protocol, fold=fold, split=split)
            if limit is not None:
                if limit < 1:
                    raise ConfigError(f"limit must be a positive number of rows, got {limit}")
                if limit < len(rows):
                    rows = rows[np.linspace(0, len(rows) - 1, limit).round().astype(np.int64)]
            if len(rows) == 0:
                raise ConfigError(f"{self.protocol.id} fold {fold} split {split!r} selects no rows of "
                                  f"store {self.path} (its subjects: {', '.join(sorted(store.units()))})",
                                  path=self.path)
            self.rows = rows
            self.labels = np.ascontiguousarray(store.labels[rows], dtype=np.int8)
            self.subjects = sorted(set(store.subjects[rows].tolist()))
        self.aus = self.protocol.aus
        self.limited = limit is not None
        self._store: Store | None = None
        self._pid = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        row = int(self.rows[i])
        return self._image(row), torch.from_numpy(self.labels[i]), row

    def au_rates(self) -> np.ndarray:
        """Occurrence rate per AU over this selection's known labels (NaN where none is known)."""
        return occurrence_rates(self.labels)

    def _image(self, row: int) -> torch.Tensor:
        if self._store is None or self._pid != os.getpid():   # first use here, or a forked worker
            self._store, self._pid = open_store(self.path), os.getpid()
        return torch.from_numpy(self._store.image(row)).permute(2, 0, 1).contiguous()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_store"] = state["_pid"] = None   # h5py handles do not pickle; reopen on use
        return state

    def __repr__(self) -> str:
        return (f"AUStoreDataset({str(self.path)!r}, protocol={self.protocol.id!r}, fold={self.fold}, "
                f"split={self.split!r}, rows={len(self)}{', limited' if self.limited else ''})")
