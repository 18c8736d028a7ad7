"""Reading a finished store: frame columns, images by row, and protocol subsets."""
from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from ..datasets.base import Anomaly
from ..errors import ProtocolError, StoreError, StoreMismatchError, UnknownNameError
from ..protocols import SPLITS, Protocol, load_protocol
from ._codec import decode_image
from ._shards import SHARD_FIX, SHARDS, shard_problems
from ._schema import JSON_ATTRS, PARTIAL_SUFFIX, READABLE_SCHEMAS, SCHEMA_VERSION, StoreSettings, text


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        partial = path.with_name(path.name + PARTIAL_SUFFIX)
        hint = (f"; {partial.name} is an interrupted run: rerun `austack prepare` with --resume"
                if partial.exists() else "; create it with `austack prepare`")
        raise StoreError(f"store {path} does not exist{hint}", path=path)
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a store; a partial folder is an interrupted run "
                         "(incomplete): rerun `austack prepare` with --resume to finish it", path=path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"{path} is not a readable HDF5 store ({e})", path=path) from None


class Store:
    """A prepared store opened for reading. Columns are read into memory on first use; images
    stay on disk and are decoded one row at a time."""

    def __init__(self, path: str | os.PathLike, *, allow_incomplete: bool = False):
        self.path = Path(path).expanduser().resolve()
        self.file = _open_h5(self.path)
        attrs = self.file.attrs
        if attrs.get("schema_version") not in READABLE_SCHEMAS:
            self.close()
            raise StoreError(f"{self.path} has schema_version {attrs.get('schema_version')!r}; this austack "
                             f"reads schema {SCHEMA_VERSION}: prepare it again", path=self.path)
        if not allow_incomplete and not attrs.get("complete", False):
            self.close()
            raise StoreError(f"{self.path} is incomplete (an interrupted `austack prepare`); rerun it with "
                             "--resume to finish it", path=self.path)
        problems = shard_problems(self.file, self.path)
        if problems:
            self.close()
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise StoreError(f"{self.path} is a virtual store over shards, and {problems[0]}{more}: {SHARD_FIX}",
                             path=self.path)
        self.settings = StoreSettings.from_attrs(attrs)
        self._images = self.file["images"]

    # --- metadata -----------------------------------------------------------------------
    @property
    def attrs(self) -> dict:
        """Root attributes, JSON ones decoded."""
        out = {}
        for k, v in self.file.attrs.items():
            if k in JSON_ATTRS and isinstance(v, str):
                v = json.loads(v)
            out[k] = v.tolist() if isinstance(v, np.ndarray) else v.item() if isinstance(v, np.generic) else v
        return out

    @property
    def shard_files(self) -> list[Path]:
        """The shard files a virtual store (`prepare --shards --virtual`) reads; [] otherwise."""
        if SHARDS not in self.file:
            return []
        return [self.path.parent / text(r["file"]) for r in self.file[SHARDS][:]]

    @property
    def schema_version(self) -> int:
        return int(self.file.attrs["schema_version"])

    @property
    def identity(self) -> str:
        """sha256 hex of the store's content (see `store_identity`)."""
        if "identity" not in self.file.attrs:
            raise StoreError(f"{self.path} has schema {self.schema_version}, which records no content identity; "
                             f"prepare it again with this austack (schema {SCHEMA_VERSION})", path=self.path)
        return str(self.file.attrs["identity"])

    @property
    def versions(self) -> dict:
        """Versions of opencv, dlib, h5py, hdf5 and numpy the store was written with ({} if unknown)."""
        return self.attrs.get("versions", {})

    @property
    def source_synthetic(self) -> bool:
        """Whether the raw data was made by `austack synth` (False for schema 1 stores)."""
        return bool(self.file.attrs.get("source_synthetic", False))

    @property
    def source_noise(self) -> float | None:
        """The synthetic label-noise (flip) rate; None when the source is not synthetic."""
        return float(self.file.attrs["source_noise"]) if self.source_synthetic else None

    @property
    def source_synth_seed(self) -> int | None:
        return int(self.file.attrs["source_synth_seed"]) if self.source_synthetic else None

    @property
    def dataset(self) -> str:
        return self.settings.dataset

    @property
    def aus(self) -> tuple[int, ...]:
        return self.settings.aus

    @property
    def size(self) -> int:
        return self.settings.size

    def __len__(self) -> int:
        return len(self._images)

    def _column(self, name: str) -> np.ndarray:
        ds = self.file[name]
        return ds.asstr()[:].astype(str) if ds.dtype.kind == "O" else ds[:]

    @cached_property
    def labels(self) -> np.ndarray:
        """int8 (N, n_au): 1 present, 0 absent, -1 unknown; columns in `aus` order."""
        return self._column("labels")

    @cached_property
    def intensities(self) -> np.ndarray | None:
        return self._column("intensities") if "intensities" in self.file else None

    @cached_property
    def subjects(self) -> np.ndarray:
        return self._column("subject")

    @cached_property
    def session_ids(self) -> np.ndarray:
        return self._column("session")

    @cached_property
    def frames(self) -> np.ndarray:
        return self._column("frame")

    @cached_property
    def face(self) -> np.ndarray:
        return self._column("face")

    @cached_property
    def splits(self) -> np.ndarray:
        return self._column("split")

    @cached_property
    def landmarks(self) -> np.ndarray:
        return self._column("landmarks")

    @cached_property
    def sessions(self) -> np.ndarray:
        """The `sessions` table: subject, session, start, stop, sha256, label_file, label_sha256."""
        return self.file["sessions"][:]

    def anomalies(self) -> list[Anomaly]:
        return [Anomaly(text(k), text(p), text(d), int(c)) for k, p, d, c in self.file["anomalies"][:]]

    # --- images -------------------------------------------------------------------------
    def image_bytes(self, i: int) -> np.ndarray:
        """Row `i` of `images` as stored (JPEG bytes or the raw array)."""
        return self._images[int(i)]

    def image(self, i: int) -> np.ndarray:
        """The aligned face of row `i`, RGB uint8 S x S x 3."""
        return decode_image(self._images[int(i)], self.settings.image_encoding, where=f"{self.path} row {i}")

    # --- subsets ------------------------------------------------------------------------
    def protocol(self, protocol: str | Protocol | None = None) -> Protocol:
        """The store's protocol, or another one for the same dataset and AUs."""
        if isinstance(protocol, Protocol):
            p = protocol
        elif protocol is not None:
            p = load_protocol(protocol)
        else:
            try:
                p = load_protocol(self.settings.protocol)
            except UnknownNameError:  # a protocol given as a YAML file at prepare time
                source = self.attrs.get("source") or {}
                if not Path(source.get("protocol_file", "")).is_file():
                    raise
                p = load_protocol(source["protocol_file"])
        if p.id == self.settings.protocol and p.hash != self.settings.protocol_hash:
            raise StoreMismatchError(f"{self.path} was prepared with {p.id} hash {self.settings.protocol_hash}, "
                                     f"but the installed {p.id} hashes to {p.hash}: its content changed; "
                                     "prepare the store again or restore the protocol file", path=self.path)
        if p.dataset != self.dataset:
            raise ProtocolError(f"protocol {p.id} is for {p.dataset}, but {self.path} holds {self.dataset}")
        if tuple(p.aus) != self.aus:
            raise StoreMismatchError(f"protocol {p.id} scores AUs {list(p.aus)}, but {self.path} was prepared "
                                     f"with AUs {list(self.aus)}: prepare the store with this protocol",
                                     path=self.path)
        return p

    def units(self) -> dict[str, str | None]:
        """Each subject (Aff-Wild2: video) with the dataset's own split, where it has one."""
        subjects, splits = self.subjects, self.splits
        firsts = np.unique(subjects, return_index=True)[1]
        return {subjects[i]: (splits[i] or None) for i in sorted(firsts)}

    def assignment(self, fold: int, protocol: str | Protocol | None = None) -> dict[str, str]:
        """unit -> "train" | "val" | "test" | "unused" for one fold."""
        return self.protocol(protocol).assign(fold, self.units())

    def get_subset(self, protocol: str | Protocol | None = None, *, fold: int, split: str) -> np.ndarray:
        """Row indices (int64, ascending) of one split of one fold."""
        if split not in SPLITS:
            raise ProtocolError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        assigned = self.assignment(fold, protocol)
        wanted = [u for u, s in assigned.items() if s == split]
        return np.flatnonzero(np.isin(self.subjects, wanted))

    # --- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        if self.file.id.valid:
            self.file.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, dataset={self.dataset!r}, frames={len(self)})"


def open_store(path: str | os.PathLike) -> Store:
    """Open a finished store for reading; an interrupted (incomplete) one is refused."""
    return Store(path)


def store_identity(path: str | os.PathLike) -> str:
    """The sha256 hex recorded at write time over the store's images, labels, landmarks,
    frame columns, subject/session columns and protocol id and hash (`austack verify` and
    `check_store` recompute it)."""
    with Store(path) as s:
        return s.identity
