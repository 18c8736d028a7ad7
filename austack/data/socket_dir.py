"""DataLoader workers hand tensors to the main process through AF_UNIX sockets that Python's
multiprocessing makes in its own temporary folder under TMPDIR. A socket path is limited to
107 bytes, so with a long TMPDIR (a cluster's per-job scratch path) the bind fails inside the
worker's feeder thread and the loader waits forever. `short_socket_dir` points multiprocessing's
folder, for this process and the workers it forks, at a short one when TMPDIR is too long."""
from __future__ import annotations

import os
import shutil
import tempfile
from functools import partial

SOCKET_PATH_MAX = 107          # sizeof(sun_path) - 1 on Linux
SOCKET_NAME_ROOM = 40          # "/pymp-XXXXXXXX/listener-XXXXXXXX" and a margin
SHORT_BASES = ("/tmp", "/dev/shm", "/var/tmp")


def short_socket_dir() -> str | None:
    """Make multiprocessing's temp folder short if TMPDIR would make its sockets too long;
    returns the folder chosen, or None when nothing needed changing (or nothing short is
    writable, where the loader would fail as before)."""
    from multiprocessing import process, util

    config = process.current_process()._config   # where util.get_temp_dir() keeps its folder
    current = config.get("tempdir")
    base = os.path.dirname(current) if current else tempfile.gettempdir()
    if len(base) + SOCKET_NAME_ROOM <= SOCKET_PATH_MAX:
        return None
    for short in SHORT_BASES:
        if os.path.isdir(short) and os.access(short, os.W_OK | os.X_OK):
            folder = tempfile.mkdtemp(prefix="pymp-", dir=short)
            config["tempdir"] = folder
            util.Finalize(None, partial(shutil.rmtree, folder, ignore_errors=True), exitpriority=-100)
            return folder
    return None
