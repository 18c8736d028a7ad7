"""Where prepare's jobs run, and running them in order with a bounded window.

`open_executor` makes the one choice of executor and device for a run: the caller's own
`concurrent.futures.Executor`, a Dask cluster (`dask_cluster`), or local processes, with the
window of jobs in flight that suits it.

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
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

import cv2

from ..errors import AustackError, ConfigError
from .options import PrepareOptions

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


_forked = False   # this process was forked from one that had imported austack


def _mark_forked() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_mark_forked)


@contextmanager
def one_cv2_thread() -> Iterator[None]:
    """OpenCV on one thread inside the block, as it was after. prepare holds this around a
    whole run: its parallelism is its workers, one core each, and OpenCV's own threads would
    have N workers compete for N cores (and a `--workers 1` run use more than one).

    Only ever in a process that owns its OpenCV thread pool, never in a forked pool worker:
    there the pool's state is the parent's, and reconfiguring it waits forever on threads
    that were not forked. Set before the fork, the workers inherit one thread; in a process
    forked from another (a user's own pool calling prepare), it is left as it is."""
    before = cv2.getNumThreads()
    if before != 1 and not _forked:
        cv2.setNumThreads(1)
    try:
        yield
    finally:
        if before != 1 and not _forked:
            cv2.setNumThreads(before)


@dataclass(frozen=True)
class Pool:
    """An open executor and how many jobs to keep in flight on it (`ordered_map`)."""

    executor: Executor
    window: int
    running: int | None = None


@contextmanager
def open_executor(options: PrepareOptions, executor: Executor | None = None) -> Iterator[Pool]:
    """The run's executor: `executor` if given, else a Dask cluster at `options.dask`, else
    `options.workers` local processes (in-process for one), shut down on exit (at once,
    dropping queued work, on Ctrl-C or an error: nobody will write it). A `device` is checked
    here, before any work. OpenCV runs on one thread meanwhile, here and so in the workers
    forked from here (`one_cv2_thread`)."""
    o = options
    if o.dask is not None and executor is not None:
        raise ConfigError("give prepare an executor or a Dask address, not both")
    if o.device is not None:
        _check_device(o.device, o.workers, executor is not None or o.dask is not None)
    if o.dask is not None:
        from .dask_cluster import dask_executor

        with dask_executor(o.dask) as (cluster, threads), one_cv2_thread():
            yield Pool(cluster, o.window or 2 * threads, o.running or _cluster_running(threads))
        return
    with one_cv2_thread():
        if executor is not None:
            yield Pool(executor, o.window or 2 * o.workers, o.running)
            return
        own, finished = local_executor(o.workers), False
        try:
            yield Pool(own, o.window or 2 * o.workers, o.running)
            finished = True
        finally:
            own.shutdown(wait=finished, cancel_futures=True)


def _check_device(device: str, workers: int, elsewhere: bool) -> None:
    """`--device` runs the chunks in this process (a forked pool cannot share its CUDA
    context) or on a cluster's workers, each with its own device."""
    if workers > 1:
        raise ConfigError(f"--device {device} decodes in this process: drop --workers {workers} (one process "
                          "keeps a GPU busy), or use --dask with a GPU per worker")
    if not elsewhere:
        from .gpu import check_device

        check_device(device)


def _cluster_running(threads: int) -> int:
    """Chunks to keep unfinished on a cluster: one per worker thread, so each goes to whichever
    worker is free (`ordered_map`); with a single worker there is no wrong place, and one more
    queued on it hides the round trip between a chunk's end and the next one's start (0.88
    of the local pool's rate without it, 0.96-1.00 with it, measured on 91 kB frames)."""
    return threads if threads > 1 else 2
