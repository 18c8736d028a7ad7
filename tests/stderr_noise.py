"""A thread that writes to the process's stderr the whole time, at both levels (the fd, as
native code and other processes' logging do, and Python's `sys.stderr`, as a progress bar
does), so a test can check that nothing's fate depends on that text."""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager


@contextmanager
def stderr_noise(period_s: float = 0.0005):
    """Yields a dict whose "writes" counts what the thread wrote (a test checks it ran)."""
    stop, said = threading.Event(), {"writes": 0}

    def chatter():
        while not stop.is_set():
            os.write(2, b"[noise] a line straight to fd 2\n")
            sys.stderr.write("[noise] a line through sys.stderr\n")
            sys.stderr.flush()
            said["writes"] += 2
            time.sleep(period_s)

    thread = threading.Thread(target=chatter, daemon=True)
    thread.start()
    try:
        yield said
    finally:
        stop.set()
        thread.join()
