"""`check_images`: the image digests of every session, recomputed once per store before
anything trains or scores on it.

`check_store` skips the image bytes (they are most of a store); a store whose images were
rewritten would then train without a word and its number be recorded under the intact
store's identity. Reading every image costs a pass over the file, so a store that passed is
remembered in a small cache file (`image-checks.json` in the user cache folder), keyed by
its path, identity and file stat (size, mtime, inode; a virtual store's shard files too): a
second run over an unchanged store pays nothing, and any write to the file shows in its stat.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import h5py

from ..errors import StoreError
from ..fileio import atomic_write_text
from ._digest import ColumnHasher
from ._schema import DIGESTS, text
from ._shards import SHARDS

CACHE_NAME = "image-checks.json"
CACHE_ENTRIES = 256     # most recent stores kept
BLOCK = 512             # images hashed at once


def cache_dir() -> Path:
    """$AUSTACK_CACHE_DIR, else $XDG_CACHE_HOME/austack, else ~/.cache/austack."""
    if os.environ.get("AUSTACK_CACHE_DIR"):
        return Path(os.environ["AUSTACK_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "austack"


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]


def _stamp(path: Path, f: h5py.File) -> dict:
    """What changes when any byte the store reads changes: its own stat and its shards'."""
    stamp = {"identity": str(f.attrs.get("identity", "")), "stat": _stat(path)}
    if SHARDS in f:
        stamp["shards"] = [_stat(path.parent / text(r["file"])) for r in f[SHARDS][:]]
    return stamp


def _read_cache() -> dict:
    try:
        data = json.loads((cache_dir() / CACHE_NAME).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}   # no cache or a damaged one: check again


def _remember(key: str, stamp: dict) -> None:
    """Best effort: a cache folder that cannot be written only costs the next run a check."""
    cache = _read_cache()
    cache.pop(key, None)
    cache[key] = stamp
    cache = dict(list(cache.items())[-CACHE_ENTRIES:])
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache_dir() / CACHE_NAME, json.dumps(cache, indent=0))
    except OSError:
        pass


def _bad_sessions(f: h5py.File, progress) -> list[str]:
    """subject/session of each session whose image bytes differ from their recorded sha256."""
    sessions = f["sessions"][:]
    if DIGESTS in f:
        recorded = f[DIGESTS][:, json.loads(f[DIGESTS].attrs["columns"]).index("images")]
    else:   # schema 1: the image digest lives in the sessions table
        recorded = sessions["sha256"]
    images, bad = f["images"], []
    for i, (row, want) in enumerate(zip(sessions, recorded)):
        if progress is not None:
            progress(i, len(sessions))
        hasher = ColumnHasher(["images"])
        for a in range(int(row["start"]), int(row["stop"]), BLOCK):
            hasher.update("images", images[a:min(int(row["stop"]), a + BLOCK)])
        if hasher.hexdigests()[0] != text(want):
            bad.append(f"{text(row['subject'])}/{text(row['session'])}")
    return bad


def check_images(path: str | os.PathLike, progress: Callable[[int, int], None] | None = None) -> bool:
    """Recompute the image digest of every session of the store at `path` unless this very
    file already passed; raise StoreError naming the sessions that fail. Returns True when
    the images were read, False when the cache vouched for them. `progress(done, total)` is
    called before each session is read."""
    path = Path(path).expanduser().resolve()
    try:
        with h5py.File(path, "r") as f:
            stamp, key = _stamp(path, f), str(path)
            if _read_cache().get(key) == stamp:
                return False
            bad = _bad_sessions(f, progress)
    except (OSError, KeyError, ValueError) as e:
        raise StoreError(f"{path}: its images cannot be read for their check ({e}); run `austack verify "
                         f"{path}`", path=path) from None
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise StoreError(f"{path}: the images of {len(bad)} session(s) ({shown}) differ from the sha256 recorded "
                         f"at prepare time; the store was changed or damaged: run `austack verify {path}` and "
                         "prepare it again", path=path)
    _remember(key, stamp)
    return True
