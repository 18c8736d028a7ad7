"""The durable half of a store being written: `OUT.h5.partial/`, one file per finished piece.

Each chunk of rows is one `.npz` file and each finished session one `.json` marker, every file
written whole or not at all (`austack.fileio`: temporary file, fsync, rename). A run killed at
any instant therefore leaves only whole files plus, at worst, a stray temporary one, and what
is on disk is exactly what a resume keeps. No HDF5 file is ever appended to in place: the
store is assembled from these pieces in one pass at the end (`_assemble`).
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..datasets.base import Anomaly
from ..errors import StoreError, StoreMismatchError
from ..fileio import atomic_open, atomic_write_text
from ._schema import SCHEMA_VERSION, StoreSettings

FORMAT = "austack-store-parts"
FORMAT_VERSION = 1
SETTINGS_FILE = "settings.json"
LOCK_FILE = ".lock"      # flock'ed by the run writing the folder
_HELD: dict[str, int] = {}   # lock file -> descriptor, of the folders this process holds
COLUMNS = ("labels", "landmarks", "matrix", "face", "landmark_origin", "frame", "intensities")


def write_error(path: Path, e: OSError) -> StoreError:
    """One line for a failed write that names the path and the fix."""
    if e.errno == errno.ENOSPC:
        fix = "free some space there, then rerun `austack prepare` with --resume"
        what = "no space left on the device" + getattr(e, "detail", "")
    elif e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "choose a writable OUT folder or fix its permissions"
        what = "the folder is not writable"
    else:
        fix = "fix the cause, then rerun `austack prepare` with --resume"
        what = e.strerror or str(e)
    return StoreError(f"cannot write {path}: {what}; {fix}", path=path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False   # this process's own leftovers are never in use by it at a sweep
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # alive, under another user
        return True
    return True


def sweep_leftovers(partial: Path) -> None:
    """Remove `.OUT.h5.partial.<pid>.new|old` beside `partial`: what a run killed while it made
    or removed its partial folder leaves (the folder is renamed aside before being deleted)."""
    for stale in partial.parent.glob(f".{partial.name}.*.*"):
        pid = stale.name[len(partial.name) + 2:].rpartition(".")[0]
        if stale.is_dir() and stale.suffix in (".new", ".old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


class NoRoomError(OSError):
    """ENOSPC found before writing: `detail` says how much was needed and how much is free."""

    def __init__(self, folder: Path, need: int, free: int):
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))
        self.detail = f" (the store needs about {need / 2**20:.1f} MiB, {free / 2**20:.1f} MiB are free)"


def check_room(folder: Path, need: int) -> None:
    """Raise NoRoomError unless the filesystem of `folder` has `need` bytes free: HDF5 cannot
    stop cleanly when a disk fills under it (h5py reports, and may crash on, every object it
    frees), so the final file's size is checked before it is written."""
    free = shutil.disk_usage(folder).free
    if free < need:
        raise NoRoomError(folder, need, free)


# fallocate(2)'s FALLOC_FL_KEEP_SIZE: reserve blocks past the end without changing the file
_KEEP_SIZE = 1


def reserve_room(path: Path, need: int) -> None:
    """Reserve `need` bytes of disk for the file at `path` now (Linux `fallocate`, keeping its
    size and bytes as they are), or raise NoRoomError. HDF5 then never meets a full disk while
    it writes, even when another program fills the disk after `check_room` looked; closing the
    file (HDF5 truncates it to its end) returns what was not used. Where the filesystem cannot
    reserve, nothing happens and `check_room` is the guard."""
    if need <= 0 or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    call = getattr(libc, "fallocate", None)
    if call is None:
        return
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    fd = os.open(path, os.O_WRONLY)
    try:
        if call(fd, _KEEP_SIZE, 0, need) != 0 and ctypes.get_errno() in (errno.ENOSPC, errno.EDQUOT):
            raise NoRoomError(path.parent, need, shutil.disk_usage(path.parent).free)
    finally:
        os.close(fd)


def settings_json(settings: StoreSettings) -> dict:
    d = asdict(settings)
    d.pop("size")
    d["aus"] = list(d["aus"])
    return d


class PartDir:
    """The folder of chunk parts and session markers of one store being written."""

    def __init__(self, folder: Path, settings: StoreSettings):
        self.folder, self.settings = folder, settings

    # --- opening ----------------------------------------------------------------------
    def create(self) -> None:
        """Made beside under a temporary name, settings written, then renamed: a kill at any
        instant leaves no folder without its settings."""
        fresh = self._aside("new")
        try:
            self.sweep()
            fresh.mkdir(parents=True)
            atomic_write_text(fresh / SETTINGS_FILE, json.dumps(
                {"format": FORMAT, "version": FORMAT_VERSION, "schema_version": SCHEMA_VERSION,
                 "settings": settings_json(self.settings)}, sort_keys=True))
            os.rename(fresh, self.folder)
        except OSError as e:
            shutil.rmtree(fresh, ignore_errors=True)
            raise write_error(self.folder, e) from None

    def open_existing(self) -> None:
        """Check the folder is ours and made with the same settings; drop stray temporaries."""
        where = self.folder
        if not where.is_dir():
            raise StoreError(f"{where} is a partial file of an older austack, which cannot be resumed "
                             "safely; rerun with --force to start over", path=where)
        try:
            head = json.loads((where / SETTINGS_FILE).read_text())
            old = StoreSettings(**head["settings"])
            ok = head["format"] == FORMAT and head["version"] == FORMAT_VERSION
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise StoreError(f"{where} is not a partial store this austack can resume (its {SETTINGS_FILE} "
                             "is missing or unreadable); rerun with --force to start over", path=where)
        diffs = old.differences(self.settings)
        if diffs:
            raise StoreMismatchError(f"cannot resume {where} with other settings ({'; '.join(diffs)}); rerun "
                                     "with the original settings, or with --force to start over", path=where)
        for tmp in where.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        self.sweep()

    def remove(self) -> None:
        """Renamed away first, then deleted: a kill mid-delete leaves no partial folder that
        lacks its settings, only a hidden one the next run sweeps."""
        gone = self._aside("old")
        try:
            os.rename(self.folder, gone)
        except OSError:
            gone = self.folder
        shutil.rmtree(gone, ignore_errors=True)

    def _aside(self, what: str) -> Path:
        return self.folder.with_name(f".{self.folder.name}.{os.getpid()}.{what}")

    def sweep(self) -> None:
        """Drop the hidden folders a killed run left beside the partial folder (those of a
        run still alive are its own business)."""
        sweep_leftovers(self.folder)

    # --- the lock -----------------------------------------------------------------------
    def lock(self) -> None:
        """Hold the folder for this process: a second run on it (two `--resume`) is refused
        at once with the holder's pid, instead of both writing and both failing. A POSIX
        record lock (`lockf`), not `flock`: forked workers do not inherit it, so a worker that
        outlives a killed run never holds the folder."""
        try:
            import fcntl
        except ImportError:   # not POSIX: no lock, as before
            return
        path = self.folder / LOCK_FILE
        held = _HELD.pop(str(path), None)
        if held is not None:   # an earlier writer of this process (stopped by an error) holds it
            try:
                if os.fstat(held).st_ino == os.stat(path).st_ino:
                    self._lock_fd = _HELD[str(path)] = held
                    return
            except OSError:
                pass
            os.close(held)     # the lock of a folder since removed
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise write_error(path, e) from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreError(f"{self.folder} is being written by another `austack prepare` (pid {holder}); let it "
                             "finish (or stop it), then rerun with --resume", path=self.folder) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = _HELD[str(path)] = fd

    def unlock(self) -> None:
        fd, self._lock_fd = getattr(self, "_lock_fd", None), None
        if fd is not None:
            _HELD.pop(str(self.folder / LOCK_FILE), None)
            os.close(fd)

    # --- chunks -------------------------------------------------------------------------
    def chunk_path(self, session: int, chunk: int) -> Path:
        return self.folder / f"s{session:06d}-c{chunk:05d}.npz"

    def write_chunk(self, session: int, chunk: int, key: str, rows, no_face: list[int] = ()) -> None:
        arrays = chunk_arrays(rows)
        meta = {"key": key, "no_face": [int(x) for x in no_face],
                "anomalies": anomaly_lists(rows.anomalies)}
        arrays["meta"] = np.array(json.dumps(meta))
        path = self.chunk_path(session, chunk)
        try:
            with atomic_open(path, "wb") as f:
                _save_npz(f, arrays)
        except OSError as e:
            raise write_error(path, e) from None

    def chunk_meta(self, session: int, chunk: int) -> dict | None:
        """The chunk's key, no-face frames and anomalies; None if absent or unreadable."""
        try:
            with np.load(self.chunk_path(session, chunk), allow_pickle=False) as z:
                return json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            return None

    def read_chunk(self, session: int, chunk: int) -> dict:
        """The chunk's arrays; a damaged part is removed and reported, so a resume redoes it."""
        path = self.chunk_path(session, chunk)
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
            path.unlink(missing_ok=True)
            raise StoreError(f"{path} is damaged ({e}); it was removed: rerun `austack prepare` with --resume "
                             "to compute it again", path=path) from None

    # --- sessions -----------------------------------------------------------------------
    def marker_path(self, session: int) -> Path:
        return self.folder / f"s{session:06d}.json"

    def write_session(self, session: int, marker: dict) -> None:
        path = self.marker_path(session)
        try:
            atomic_write_text(path, json.dumps(marker, sort_keys=True))
        except OSError as e:
            raise write_error(path, e) from None

    def session(self, session: int) -> dict | None:
        try:
            return json.loads(self.marker_path(session).read_text())
        except (OSError, ValueError):
            return None

    def done(self) -> list[dict]:
        """Markers of the finished sessions 0, 1, ... up to the first missing one; markers
        after a gap are stale (an older run's) and removed."""
        out = []
        while (m := self.session(len(out))) is not None:
            out.append(m)
        for stale in self.folder.glob("s??????.json"):
            if int(stale.stem[1:]) >= len(out):
                stale.unlink(missing_ok=True)
        return out


def _save_npz(f, arrays: dict) -> None:
    np.savez(f, **arrays)   # uncompressed: JPEG bytes do not shrink, and raw faces barely


def chunk_arrays(rows) -> dict[str, np.ndarray]:
    """A `FrameRows` as plain arrays (no pickles): images as one byte blob plus offsets."""
    images = [np.ascontiguousarray(r, dtype=np.uint8).reshape(-1) for r in rows.images]
    lengths = np.array([len(r) for r in images], np.int64)
    out = {"images": np.concatenate(images) if images else np.zeros(0, np.uint8),
           "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
           "split": np.array(list(rows.split), dtype=str) if len(rows.split) else np.zeros(0, "<U1")}
    for name in COLUMNS:
        value = getattr(rows, name)
        if value is not None:
            out[name] = np.asarray(value)
    return out


def anomaly_lists(anomalies) -> list[list]:
    return [[a.kind, a.path, a.detail, int(a.count)] for a in anomalies]


def anomalies_of(items) -> list[Anomaly]:
    return [Anomaly(str(k), str(p), str(d), int(c)) for k, p, d, c in items]


__all__ = ["PartDir", "write_error", "chunk_arrays", "anomalies_of", "anomaly_lists"]
