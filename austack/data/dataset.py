"""A torch Dataset over one protocol/fold/split of a prepared HDF5 store (docs/store-schema.md).

Construction reads only the small per-frame columns (subject, split, labels) and closes the
file; the images are read through a handle opened lazily by each process that indexes the
dataset (each DataLoader worker its own), so the dataset pickles before and after use.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, StoreError, StoreMismatchError
from ..protocols import Protocol, load_protocol

SCHEMA_VERSION = 1
_REQUIRED = ("images", "labels", "subject", "split")


def _attr_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _resolve_protocol(f: h5py.File, path: Path, protocol: str | Protocol | None) -> Protocol:
    """The protocol asked for (default: the store's), checked against the store's own."""
    stored_id, stored_hash = _attr_str(f.attrs["protocol"]), _attr_str(f.attrs["protocol_hash"])
    proto = protocol if isinstance(protocol, Protocol) else load_protocol(protocol or stored_id)
    if proto.dataset != _attr_str(f.attrs["dataset"]):
        raise ConfigError(f"protocol {proto.id} is for {proto.dataset}, but store {path} holds "
                          f"{_attr_str(f.attrs['dataset'])}", path=path)
    if proto.id == stored_id and proto.hash != stored_hash:
        raise StoreMismatchError(f"store {path} was prepared with {stored_id} hash {stored_hash} "
                                 f"(existing) but the protocol file now hashes to {proto.hash} (new); "
                                 f"re-run `austack prepare` or restore the protocol file", path=path)
    return proto


def _open_store(path: Path) -> h5py.File:
    if not path.is_file():
        raise StoreError(f"store {path} does not exist; create it with `austack prepare`", path=path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"store {path} is not a readable HDF5 file: {e}", path=path) from None
    version = f.attrs.get("schema_version")
    problem = (f"has schema_version {version}, this austack reads {SCHEMA_VERSION}"
               if version != SCHEMA_VERSION else
               "is incomplete (an interrupted prepare); finish it with `austack prepare --resume`"
               if not f.attrs.get("complete", False) else
               f"lacks the dataset(s) {', '.join(k for k in _REQUIRED if k not in f)}"
               if any(k not in f for k in _REQUIRED) else None)
    if problem:
        f.close()
        raise StoreError(f"store {path} {problem}", path=path)
    return f


class AUStoreDataset(Dataset):
    """Items are (image uint8 [3, S, S] RGB, labels int8 [n_au] with -1 unknown, store row).

    protocol: a protocol id or object; default the store's own. Its AUs pick the label columns.
    fold, split: which rows; "val" is drawn from the fold's training subjects (never its test).
    limit: keep this many rows, evenly spaced over the selection (debug runs: not comparable).
    """

    def __init__(self, path: str | os.PathLike, *, protocol: str | Protocol | None = None, fold: int = 1,
                 split: str = "train", limit: int | None = None):
        self.path = Path(path).expanduser().resolve()
        self.fold, self.split = fold, split
        with _open_store(self.path) as f:
            self.protocol = _resolve_protocol(f, self.path, protocol)
            store_aus = [int(a) for a in f.attrs["aus"]]
            missing = [a for a in self.protocol.aus if a not in store_aus]
            if missing:
                raise ConfigError(f"protocol {self.protocol.id} scores AU {missing} that store {self.path} "
                                  f"lacks (store AUs: {store_aus})", path=self.path)
            subjects = f["subject"].asstr()[:]
            names, first, unit_of_row = np.unique(subjects, return_index=True, return_inverse=True)
            own_split = f["split"].asstr()[:][first]          # the dataset's own split per unit
            units = {str(u): (s or None) for u, s in zip(names, own_split)}
            chosen = np.isin(names, self.protocol.subjects(fold, split, units))
            rows = np.flatnonzero(chosen[unit_of_row])
            if limit is not None:
                if limit < 1:
                    raise ConfigError(f"limit must be a positive number of rows, got {limit}")
                if limit < len(rows):
                    rows = rows[np.linspace(0, len(rows) - 1, limit).round().astype(np.int64)]
            if len(rows) == 0:
                raise ConfigError(f"{self.protocol.id} fold {fold} split {split!r} selects no rows of "
                                  f"store {self.path} (its subjects: {', '.join(sorted(units))})",
                                  path=self.path)
            cols = [store_aus.index(a) for a in self.protocol.aus]
            self.rows = rows
            self.labels = np.ascontiguousarray(f["labels"][:][rows][:, cols], dtype=np.int8)
            self.subjects = [str(u) for u in names[np.unique(unit_of_row[rows])]]
            self.image_encoding = _attr_str(f.attrs.get("image_encoding", "jpeg"))
        self.aus = self.protocol.aus
        self.limited = limit is not None
        self._images = None
        self._pid = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        row = int(self.rows[i])
        return self._image(row), torch.from_numpy(self.labels[i]), row

    def au_rates(self) -> np.ndarray:
        """Occurrence rate per AU over this selection's known labels (NaN where none is known)."""
        known = (self.labels >= 0).sum(0)
        positive = (self.labels == 1).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(known > 0, positive / np.maximum(known, 1), np.nan)

    def _handle(self) -> h5py.Dataset:
        if self._images is None or self._pid != os.getpid():   # first use here, or a forked worker
            self._images = _open_store(self.path)["images"]
            self._pid = os.getpid()
        return self._images

    def _image(self, row: int) -> torch.Tensor:
        data = self._handle()[row]
        if self.image_encoding == "raw":
            return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is None:
            raise StoreError(f"store {self.path}: row {row} of images is not a decodable JPEG "
                             f"({data.size} bytes); re-run `austack prepare --force`", path=self.path)
        return torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).contiguous()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_images"] = state["_pid"] = None   # h5py handles do not pickle; reopen on use
        return state

    def __repr__(self) -> str:
        return (f"AUStoreDataset({str(self.path)!r}, protocol={self.protocol.id!r}, fold={self.fold}, "
                f"split={self.split!r}, rows={len(self)}{', limited' if self.limited else ''})")
