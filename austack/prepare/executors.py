"""Running jobs on any `concurrent.futures.Executor`, in order, with a bounded window.

`Executor.map` submits every item at once, so its memory grows with the input; `ordered_map`
keeps at most `window` jobs in flight and yields results in input order. `local_executor`
gives the default: in-process for one worker, else a process pool whose workers die with
their parent (Linux `PR_SET_PDEATHSIG`, plus a watchdog thread that polls the parent's pid).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from typing import Callable, Iterable, Iterator, TypeVar

from ..errors import AustackError

T = TypeVar("T")
R = TypeVar("R")
PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5


class InlineExecutor(Executor):
    """Runs each job in the calling thread at `submit` (one worker, no processes)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:  # KeyboardInterrupt and SystemExit propagate at once
            future.set_exception(e)
        return future


class WorkerLostError(AustackError):
    """A job failed in the executor itself (a worker died, a pool broke), not in its own code."""


OnError = Callable[[object, Exception], Exception]


def _result(tag, fut: Future | None, on_error: OnError | None):
    if fut is None:
        return None
    try:
        return fut.result()
    except Exception as e:
        if on_error is None:
            raise
        raise on_error(tag, e) from e


def _submit(executor: Executor, fn, tag, job, on_error: OnError | None) -> Future:
    try:
        return executor.submit(fn, job)
    except Exception as e:   # e.g. a pool broken by a worker that died
        if on_error is None:
            raise
        raise on_error(tag, e) from e


def ordered_map(executor: Executor, fn: Callable[[T], R], items: Iterable[tuple[object, T | None]],
                window: int, on_error: OnError | None = None, *,
                running: int | None = None) -> Iterator[tuple[object, R | None]]:
    """(tag, fn(job)) for each (tag, job) of `items`, in order; a None job yields (tag, None)
    without running. At most `window` items are submitted and not yet yielded, and at most
    `running` (default `window`) of them not yet finished. A job that raises raises here, as
    `on_error(tag, error)` when given (to name what failed).

    `running` = the executor's workers suits a cluster: its scheduler places a job on a worker
    when it is submitted, by count, not by size, so jobs submitted ahead can queue behind a
    long one while another worker idles. Holding them back until a worker is free gives each
    to whichever finishes first, as a local pool's shared queue does."""
    pending: deque = deque()
    running = running or window
    try:
        for tag, job in items:
            while True:
                while pending and (pending[0][1] is None or pending[0][1].done()):
                    t, fut = pending.popleft()
                    yield t, _result(t, fut, on_error)
                if len(pending) >= window:
                    t, fut = pending.popleft()
                    yield t, _result(t, fut, on_error)
                    continue
                busy = [f for _, f in pending if f is not None and not f.done()]
                if len(busy) < running:
                    break
                wait(busy, return_when=FIRST_COMPLETED)
            pending.append((tag, None if job is None else _submit(executor, fn, tag, job, on_error)))
        while pending:
            t, fut = pending.popleft()
            yield t, _result(t, fut, on_error)
    finally:  # stopped early (an error, Ctrl-C): drop what has not started
        for _, fut in pending:
            if fut is not None:
                fut.cancel()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        if os.getppid() == 1:   # re-parented to init: the parent is gone
            os._exit(1)


def die_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when `parent` ends, however it ends; leave Ctrl-C to
    the parent (it stops the run), and let SIGTERM end the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still applies
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watchdog").start()


def local_executor(workers: int) -> Executor:
    """In-process for one worker, else a pool of `workers` processes that die with this one."""
    if workers <= 1:
        return InlineExecutor()
    return ProcessPoolExecutor(workers, initializer=die_with_parent, initargs=(os.getpid(),))
