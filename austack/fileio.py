"""Files that are either whole or absent: the one atomic-write helper every writer uses.

A writer that is killed mid-write must never leave a half file under the final name: each
helper writes a temporary file in the same folder, flushes it to disk, and renames it over
the target (`os.replace` is atomic on POSIX and Windows). A failed or interrupted write
removes its temporary file. The file gets the mode a plain `open` would give (0666 less the
umask), not the temporary file's private 0600.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from .errors import ConfigError


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kw) -> Iterator[IO]:
    """Open a temporary sibling of `path` for writing; on a clean exit it replaces `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if os.chmod in os.supports_fd:   # mkstemp's 0600 would hide the file from a lab's group
            os.chmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux), else
    set and restored at once (`os.umask` has no getter)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files `atomic_open` left in `folder` when a process was killed
    mid-write (nothing can clean up after SIGKILL); the files they were to replace are intact."""
    folder = Path(folder)
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()] if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """`torch.save` that never leaves a torn file (or a stray .tmp) under `path`."""
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def check_free_space(folder: str | Path, need: int, option: str, what: str) -> None:
    """The filesystem of `folder` has `need` bytes free (an estimate), or one line saying so:
    an empty test file is written even on a full disk, and the fold would then fail later."""
    path = Path(folder).expanduser().resolve()
    free = shutil.disk_usage(path).free
    if free < need:
        raise ConfigError(f"{path} has {free / 2**20:.1f} MiB free; {what} need about {need / 2**20:.1f} MiB: "
                          f"make room or pass {option} on a larger disk", path=path)


def check_writable_dir(folder: str | Path, option: str) -> Path:
    """Create `folder` if needed and prove a file can be written there, or say which option to change."""
    path = Path(folder).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".austack-write-test-"):
            pass
    except OSError as e:
        raise ConfigError(f"cannot write to {path} ({e.strerror or e}); pass {option} with a writable folder",
                          path=path) from None
    return path
