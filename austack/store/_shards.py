"""Stores made of shards (`prepare --shards`): each shard is a whole store of a group of
sessions, written by the task that computed them into `OUT.h5.shards/shard-NNNNN.h5`.

The final `OUT.h5` is either copied from the shards (`assemble_shards`: the shards' rows cut
again at prepare's chunk boundaries and appended exactly as the partial folder's chunks are,
so the file has a plain run's bytes) or a virtual store over them (`write_virtual`: every
frame column an HDF5 virtual dataset mapping the shards' rows, the small tables copied, and
a `shards` table naming each shard file and its identity, checked on every open because HDF5
reads a missing source file as fill values without complaint).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from ..errors import StoreError
from ._assemble import HDF5_SLACK, _create, _table, assemble_sessions
from ._digest import store_identity_of
from ._parts import COLUMNS, anomaly_lists, check_room
from ._schema import (ANOMALY_DTYPE, DIGESTS, SCHEMA_VERSION, SESSION_DTYPE, STR, StoreSettings, frame_columns,
                      text)

SHARDS = "shards"   # the table of a virtual store: one row per shard file, in row order
SHARD_DTYPE = np.dtype([("file", STR), ("start", np.int64), ("stop", np.int64), ("identity", "S64")])
SHARD_FIX = ("put the shard folder back beside it, or rerun `austack prepare` with --shards --virtual "
             "--resume to compute the missing shards again")


def open_shard(path: Path, settings: StoreSettings) -> h5py.File:
    """A finished shard made with `settings`, else a one-line StoreError naming it."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"shard {path} is missing or unreadable ({e}); rerun `austack prepare` with --shards "
                         "--resume", path=path) from None
    diffs = StoreSettings.from_attrs(f.attrs).differences(settings) if f.attrs.get("complete") else ["incomplete"]
    if diffs:
        f.close()
        raise StoreError(f"shard {path} does not belong to this store ({'; '.join(diffs)}); rerun `austack "
                         "prepare` with --shards --resume", path=path)
    return f


def _chunk(f: h5py.File, s: StoreSettings, a: int, b: int) -> dict:
    """Rows a:b of a shard as a partial folder's chunk part (`_parts.chunk_arrays`)."""
    images = f["images"][a:b]
    rows = list(images) if s.image_encoding == "jpeg" else [r.reshape(-1) for r in images]
    lengths = np.array([len(r) for r in rows], np.int64)
    out = {"images": np.concatenate(rows) if rows else np.zeros(0, np.uint8),
           "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
           "split": np.array(f["split"].asstr()[a:b].tolist(), dtype=str),
           "meta": np.array(json.dumps({"anomalies": []}))}
    for name in COLUMNS:
        if name in f:
            out[name] = f[name][a:b]
    return out


def _shard_sessions(f: h5py.File, s: StoreSettings, chunk_frames: int) -> Iterator[tuple[dict, Iterator[dict]]]:
    anomalies = [(text(k), text(p), text(d), int(c)) for k, p, d, c in f["anomalies"][:]]
    done = 0
    for row in f["sessions"][:]:
        start, stop, upto = int(row["start"]), int(row["stop"]), int(row["anomaly_stop"])
        marker = {"subject": text(row["subject"]), "session": text(row["session"]),
                  "label_file": text(row["label_file"]), "label_sha256": text(row["label_sha256"]),
                  "anomalies": [list(a) for a in anomalies[done:upto]]}
        done = upto
        yield marker, (_chunk(f, s, a, min(stop, a + chunk_frames)) for a in range(start, stop, chunk_frames))


def _all_sessions(paths: list[Path], s: StoreSettings, chunk_frames: int):
    for path in paths:
        with open_shard(path, s) as f:
            yield from _shard_sessions(f, s, chunk_frames)


def assemble_shards(s: StoreSettings, paths: list[Path], target: Path, attrs: dict, reader_anomalies,
                    chunk_frames: int) -> str:
    """The copied form: the shards' sessions, in order, into one store at `target`, appended
    at the same chunk boundaries as a plain run (so the same bytes); returns its identity."""
    need = sum(Path(p).stat().st_size for p in paths) + HDF5_SLACK   # shards are stores
    check_room(target.parent, need)
    return assemble_sessions(s, _all_sessions(paths, s, chunk_frames), target, attrs, reader_anomalies, reserve=need)


class _Gathered:
    """What the virtual store copies from its shards: tables, digests, row counts."""

    def __init__(self):
        self.sessions, self.anomalies, self.digests, self.shards, self.rows = [], [], [], [], 0
        self.columns: list[str] | None = None

    def add(self, f: h5py.File, name: str) -> None:
        base, n = self.rows, len(f["images"])
        for r in f["sessions"][:]:
            self.sessions.append((text(r["subject"]), text(r["session"]), base + r["start"], base + r["stop"],
                                  r["sha256"], text(r["label_file"]), r["label_sha256"],
                                  len(self.anomalies) + r["anomaly_stop"]))
        # the anomaly_stop above counts from this shard's first anomaly: add them after
        self.anomalies += [(text(k), text(p), text(d), int(c)) for k, p, d, c in f["anomalies"][:]]
        self.digests += f[DIGESTS][:].tolist()
        self.columns = json.loads(f[DIGESTS].attrs["columns"])
        self.shards.append((name, base, base + n, str(f.attrs["identity"]).encode()))
        self.rows += n


def _layouts(files: list[tuple[str, h5py.File]], f_out: h5py.File, total: int) -> None:
    """Every frame column of `f_out` as a virtual dataset over the shards' rows."""
    s = StoreSettings.from_attrs(files[0][1].attrs)
    for name in ["images", *frame_columns(len(s.aus), s.with_intensities)]:
        first = files[0][1][name]
        layout = h5py.VirtualLayout(shape=(total, *first.shape[1:]), dtype=first.dtype)
        base = 0
        for rel, f in files:
            n = len(f[name])
            if n:
                layout[base:base + n] = h5py.VirtualSource(rel, name, shape=f[name].shape, dtype=first.dtype)
            base += n
        _virtual_dataset(f_out, name, layout)


def _virtual_dataset(f_out: h5py.File, name: str, layout: h5py.VirtualLayout) -> None:
    """`create_virtual_dataset` without the creation time HDF5 stamps into a virtual
    dataset's header, so that the same shards give the same bytes (h5py offers no
    `track_times` for virtual datasets; its own property list is reused with times off)."""
    if not hasattr(layout, "_get_dcpl"):   # an h5py without it: a valid store, only not byte-stable
        f_out.create_virtual_dataset(name, layout)
        return
    dcpl = layout._get_dcpl(f_out.filename)
    dcpl.set_obj_track_times(False)
    maxshape = None if layout.maxshape is None else tuple(h5py.h5s.UNLIMITED if m is None else m
                                                          for m in layout.maxshape)
    space = h5py.h5s.create_simple(layout.shape, maxshape)
    h5py.h5d.create(f_out.id, name=name.encode(), tid=h5py.h5t.py_create(np.dtype(layout.dtype), logical=1),
                    space=space, dcpl=dcpl)


def write_virtual(s: StoreSettings, paths: list[Path], target: Path, attrs: dict, reader_anomalies) -> str:
    """The virtual form at `target` (which must sit where the final store will: the shard files
    are named relative to its folder); returns its identity, equal to the copied form's."""
    g, files = _Gathered(), []
    try:
        for path in paths:
            rel = str(Path(path).resolve().relative_to(target.parent.resolve()))
            files.append((rel, open_shard(path, s)))
            g.add(files[-1][1], rel)
        with h5py.File(target, "w") as f:
            if g.rows:
                _layouts(files, f, g.rows)
            else:
                _create(f, s)
            _tables(f, s, g, reader_anomalies)
            identity = store_identity_of(s, [r[:2] for r in g.sessions], g.columns, g.digests)
            for k, v in {"schema_version": SCHEMA_VERSION, **s.attrs(), **attrs, "identity": identity}.items():
                f.attrs[k] = v
            f.attrs["complete"] = True   # last, as in every store
    finally:
        for _, h in files:
            h.close()
    _read_back(target, g)
    return identity


def _tables(f: h5py.File, s: StoreSettings, g: _Gathered, reader_anomalies) -> None:
    from ._digest import digest_columns

    columns = g.columns or list(digest_columns(s.with_intensities))
    _table(f, "sessions", SESSION_DTYPE, g.sessions)
    _table(f, "anomalies", ANOMALY_DTYPE, g.anomalies + [tuple(a) for a in anomaly_lists(reader_anomalies)])
    f.create_dataset(DIGESTS, data=np.array(g.digests, dtype="S64").reshape(len(g.digests), len(columns)))
    f[DIGESTS].attrs["columns"] = json.dumps(columns)
    _table(f, SHARDS, SHARD_DTYPE, g.shards)


def _read_back(target: Path, g: _Gathered) -> None:
    """The first and last image of every shard read through the virtual file: an HDF5 that
    cannot map variable-length rows must fail here, not in training."""
    with h5py.File(target, "r") as f:
        images = f["images"]
        for rel, start, stop, _ in g.shards:
            if stop <= start:
                continue
            with h5py.File(target.parent / rel, "r") as src:
                for a, b in ((start, 0), (stop - 1, stop - start - 1)):
                    if np.asarray(images[a]).tobytes() != np.asarray(src["images"][b]).tobytes():
                        raise StoreError(f"{target}: row {a} read through the virtual store differs from {rel} "
                                         f"(HDF5 {h5py.version.hdf5_version} may not map variable-length "
                                         "rows); prepare without --virtual for the copied form", path=target)


def shard_problems(f: h5py.File, path: Path) -> list[str]:
    """For a virtual store: each shard file that is missing, unfinished or not the one it was
    made over (identity), one line each; [] for a store that is not virtual."""
    if SHARDS not in f:
        return []
    problems = []
    for row in f[SHARDS][:]:
        rel, n, identity = text(row["file"]), int(row["stop"] - row["start"]), text(row["identity"])
        where = path.parent / rel
        try:
            with h5py.File(where, "r") as src:
                ok = (bool(src.attrs.get("complete")) and str(src.attrs.get("identity")) == identity
                      and len(src["images"]) == n)
        except (OSError, KeyError):
            problems.append(f"shard {where} is missing or unreadable")
            continue
        if not ok:
            problems.append(f"shard {where} is unfinished or is not the shard this store was made over")
    return problems

