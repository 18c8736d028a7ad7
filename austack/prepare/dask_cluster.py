"""`prepare --dask ADDRESS`: run prepare's chunks on a Dask cluster.

Dask's `Client.get_executor()` is a standard `concurrent.futures.Executor`, so prepare's
ordered writer needs nothing else: the chunks (a `Job` each) travel to the workers, their
results come back to the writer in order. `ADDRESS` is `local` or `local:N` (a
`LocalCluster` of N single-threaded worker processes on this machine) or a running
scheduler (`tcp://host:8786`). A worker that dies has its tasks rerun elsewhere by the
scheduler; a task that keeps killing workers ends the run with an error naming its session.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Iterator

from ..errors import ConfigError

LOCAL = "local"
CONNECT_TIMEOUT = "20s"
SPAWN_ENV = "distributed.nanny.pre-spawn-environ"
TASK_RETRIES = 1   # a task that raised (e.g. a network filesystem hiccup) is tried once more


def parse_address(address: str) -> tuple[str, int | None]:
    """("local", N) for `local[:N]` (N None: one worker per core), else (address, None)."""
    address = address.strip()
    if address != LOCAL and not address.startswith(LOCAL + ":"):
        if not address:
            raise ConfigError("--dask needs an address: local, local:N or a scheduler such as tcp://host:8786")
        return address, None
    n = address[len(LOCAL) + 1:]
    if not n:
        return LOCAL, None
    if not n.isdigit() or int(n) < 1:
        raise ConfigError(f"--dask {address}: expected local:N with N a positive number of workers")
    return LOCAL, int(n)


def glibc_malloc_env() -> dict:
    """Dask's worker environment without its MALLOC_TRIM_THRESHOLD_. Setting that variable turns
    off glibc's adaptive mmap threshold, so each decoded frame (hundreds of kB) is a fresh
    mmap and every page of it a page fault: ~140 more faults a frame, measured, and 5-10% of
    a small frame's time. A prepare worker frees what it allocates every frame, so the
    memory Dask wants returned is returned anyway."""
    import dask

    env = dict(dask.config.get(SPAWN_ENV, default={}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


def _client(address: str):
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--dask needs dask.distributed; install it with pip install 'austack[dask]'") from None
    where, n = parse_address(address)
    if where == LOCAL:
        # no dashboard, so no one reads the workers' statistical profiler: it would sample every
        # worker thread each 10 ms for nothing
        with dask.config.set({SPAWN_ENV: glibc_malloc_env(), "distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=n or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster
    try:
        return Client(where, timeout=CONNECT_TIMEOUT), None
    except (OSError, TimeoutError) as e:
        raise ConfigError(f"cannot reach the Dask scheduler at {where} ({e}); start it with `dask scheduler` "
                          "and workers with `dask worker ADDRESS`, or use --dask local:N") from None


def warm_worker() -> None:
    """Import the chunk code on a worker so the first chunk does not pay for it, and keep
    OpenCV to one thread there: a worker thread is a core. (A fresh process: Dask's nannies
    spawn, they do not fork, so OpenCV's thread pool is the worker's own to reconfigure.)"""
    import cv2

    import austack.prepare.chunk  # noqa: F401

    cv2.setNumThreads(1)


@contextmanager
def dask_executor(address: str) -> Iterator[tuple[Executor, int]]:
    """(an Executor on the cluster at `address`, its worker threads now), closed on exit."""
    client, cluster = _client(address)
    try:
        workers = client.nthreads()
        threads = sum(workers.values())
        # one warm-up per worker, overlapping the plan (pass 1) that runs here meanwhile
        warming = [client.submit(warm_worker, workers=[w], allow_other_workers=False, pure=False) for w in workers]
        # pure=False: every Job is new work, and hashing a chunk's frame list to name it costs time
        yield client.get_executor(pure=False, retries=TASK_RETRIES), max(threads, 1)
        del warming  # held until here so Dask does not drop a warm-up before it starts
    finally:
        with _quiet_shutdown(client, own_workers=cluster is not None):
            client.close()
            if cluster is not None:
                cluster.close()


QUIET = ("distributed", "tornado", "asyncio")   # the loggers a cluster's shutdown speaks through


def quiet_logs() -> None:
    """Silence a process's Dask loggers (run on each worker just before shutdown)."""
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextmanager
def _quiet_shutdown(client, own_workers: bool) -> Iterator[None]:
    """A cluster closing after the run is over has nothing left to tell: its results are
    written. Under load a worker's heartbeat or a stream can still be in flight when the
    scheduler goes, and Dask logs each such race as an ERROR with a traceback (a worker
    process prints it on the inherited stderr after the run reported success). So the
    loggers of this process, and of our own local workers, are silenced for the shutdown
    only; errors during the run are reported as before. A remote cluster's workers are
    left alone: they outlive this client."""
    levels = {name: logging.getLogger(name).level for name in QUIET}
    if own_workers:
        try:
            client.run(quiet_logs, on_error="ignore")
        except Exception:   # a worker already gone: nothing of it left to print
            pass
    quiet_logs()
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
