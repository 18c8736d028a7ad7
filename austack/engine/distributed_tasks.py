"""`bench --dask` and `study --dask`: every (recipe, fold, seed) one task on a Dask cluster.

A paper table is many small independent trainings, so each fold is a task of its own (DDP,
`ddp.py`, is for one training over several GPUs). The client checks every config once
(`open_run`), skips the folds already recorded, and submits the rest; each task runs
`run_fold_safely` on its worker's own device with its CPU threads pinned, so it gives the
numbers of a local run on that many threads. The client alone writes the results database:
a row is inserted when its task comes back, after its run-dir files are in place.

Where a task writes: the client leaves a marker file in `--out-dir`; a worker that reads it
back writes the run dir there (a shared filesystem; a killed task's retry resumes from its
`last.pt`), any other writes into a scratch folder of its own and ships the run dir's
results (config, epochs, detector, predictions) back with the row.

A worker that dies mid-task has the task rerun once (`ALLOWED_FAILURES`, our LocalCluster's
scheduler setting; a task that raises is retried once too); a task that fails again is
reported with its recipe, fold and seed, and nothing of it is recorded.
"""
from __future__ import annotations

import copy
import hashlib
import io
import logging
import os
import secrets
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

from rich.console import Console

from ..errors import ConfigError
from ..fileio import atomic_write_bytes
from ..results.schema import ResultRow
from ..runs.config import BenchConfig
from ..runs.rundir import CONFIG_NAME, DETECTOR_NAME, EPOCHS_NAME, PREDICTIONS_NAME
from .record import BenchOutcome, _open_db

ALLOWED_FAILURES = 1   # a task whose worker died is rerun once, then reported
TASK_RETRIES = 1       # a task that raised (not a fold's own error: those are rows) is tried once more
MARKER_PREFIX = ".austack-dask-"
SCRATCH = "austack-tasks"
# run-dir files that travel back from a worker without the shared --out-dir; last.pt and
# best.pt are training state, of no use once the fold is scored
SHIPPED = (CONFIG_NAME, EPOCHS_NAME, DETECTOR_NAME, PREDICTIONS_NAME)


@dataclass(frozen=True)
class Task:
    """One fold of one config; `index` says which config (and outcome) it belongs to."""

    index: int
    cfg: BenchConfig       # folds=(k,), data and out_dir absolute as the client sees them
    fold: int
    name: str              # recipe, or backbone+loss
    config_hash: str

    @property
    def label(self) -> str:
        return f"{self.name} [{self.config_hash[:6]}] fold {self.fold} seed {self.cfg.seed}"

    def new_key(self) -> str:
        """A Dask key of its own for each submission (a rerun never meets an old result)."""
        return f"austack-{self.config_hash}-fold{self.fold}-seed{self.cfg.seed}-{secrets.token_hex(3)}"


@dataclass
class TaskResult:
    """What a task sends back: the row as the worker built it, its files when they did not go
    to the shared --out-dir, and where and how it ran."""

    row: ResultRow
    files: dict[str, bytes]    # run-dir file name -> bytes; empty when written to --out-dir
    shared: bool               # the worker saw --out-dir
    worker: str                # host name
    device: str
    threads: int
    resumed: bool              # a last.pt was there: an earlier try's epochs were kept
    seconds: float


@dataclass
class LostTask:
    label: str
    error: str


@dataclass
class TaskRun:
    """The outcomes, one per config in the order given, and the tasks that failed twice."""

    outcomes: list[BenchOutcome]
    lost: list[LostTask] = field(default_factory=list)
    tasks: int = 0             # submitted (the folds already recorded are not tasks)
    threads: int = 0
    workers: int = 0
    seconds: float = 0.0       # all of it: checks, cluster start, tasks
    startup_s: float = 0.0     # the cluster's start (local:N) and the workers' warm-up
    tasks_s: float = 0.0       # from the first submission to the last result


# ---------------------------------------------------------------- the worker side

def sees_marker(path: str, token: str) -> bool:
    """True when this process reads the client's marker file: --out-dir is shared with it."""
    try:
        return Path(path).read_text(encoding="utf-8") == token
    except OSError:
        return False


def scratch_out_dir(out_dir: str) -> Path:
    """A worker's own folder for a client's --out-dir it cannot see; the same one on every try
    of a task on this host, so a retry here resumes from the earlier try's last.pt."""
    digest = hashlib.sha256(out_dir.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / SCRATCH / digest


def run_task(cfg: BenchConfig, fold: int, threads: int, marker: tuple[str, str]) -> TaskResult:
    """Run one fold on this worker (its own device: `cfg.device`, `auto` being its visible GPU)."""
    import torch

    from .bench import run_fold_safely
    from ..runs.rundir import CHECKPOINT_NAME
    from .preflight import open_run

    t0 = time.perf_counter()
    torch.set_num_threads(threads)   # a task's numbers depend on it: pinned, whatever the worker's cores
    shared = sees_marker(*marker)
    if not shared:
        cfg = replace(cfg, out_dir=str(scratch_out_dir(cfg.out_dir)))
    log = io.StringIO()
    run = open_run(replace(cfg, folds=(fold,)), Console(file=log, width=100, force_terminal=False))
    run_dir = run.run_dir(fold)
    resumed = (run_dir / CHECKPOINT_NAME).is_file()
    row = run_fold_safely(run, fold)
    files = {}
    if not shared:
        files = {n: (run_dir / n).read_bytes() for n in SHIPPED if (run_dir / n).is_file()}
        shutil.rmtree(run_dir, ignore_errors=True)   # its results travel back with the row
    return TaskResult(row, files, shared, socket.gethostname(), str(run.device), threads, resumed,
                      time.perf_counter() - t0)


def warm_worker() -> tuple[str, int]:
    """Import the training code once per worker (the first task would pay ~seconds for timm
    and the rest); (host, usable cores) for the thread count."""
    import torch  # noqa: F401

    import austack.data  # noqa: F401
    import austack.engine.bench  # noqa: F401
    import austack.engine.preflight  # noqa: F401
    import austack.losses  # noqa: F401
    import austack.metrics  # noqa: F401
    import austack.models  # noqa: F401
    import austack.models.detector  # noqa: F401

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return socket.gethostname(), cores


# ---------------------------------------------------------------- the cluster

def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def start_local_cluster(n: int | None):
    """A LocalCluster of `n` single-threaded worker processes (one per core, or per GPU, by
    default); with GPUs, worker i sees only GPU i (mod the GPU count) through its nanny's
    CUDA_VISIBLE_DEVICES, kept across the nanny's restarts of a dead worker. Workers are not
    daemons, so a task's DataLoader may start worker processes."""
    import dask
    from distributed import LocalCluster

    from ..prepare.dask_cluster import SPAWN_ENV, glibc_malloc_env

    gpus = _local_gpus()
    n = n or gpus or os.cpu_count() or 1
    settings = {SPAWN_ENV: glibc_malloc_env(), "distributed.worker.profile.enabled": False,
                "distributed.worker.daemon": False, "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                # a worker holds only the task it runs: a task queued behind it would share its death
                "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings):
        cluster = LocalCluster(n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        cluster.worker_spec.update(worker_specs(cluster.new_spec, n, gpus))
        cluster.scale(n)
        # Each nanny reads the spawn environment when it is made, and writes it into this
        # process's own environment (dask says so): made after this block, it would bring back
        # MALLOC_TRIM_THRESHOLD_ for its worker and for every worker spawned from here later.
        cluster.wait_for_workers(n)
    return cluster, n


def worker_specs(spec: dict, n: int, gpus: int) -> dict[str, dict]:
    """`n` copies of a LocalCluster's worker spec; with GPUs, worker i's nanny gives it
    CUDA_VISIBLE_DEVICES = i mod `gpus`, so its `cuda` is that GPU alone."""
    out = {}
    for i in range(n):
        out[f"task-{i}"] = s = copy.deepcopy(spec)
        if gpus:
            s["options"]["env"] = {**s["options"].get("env", {}), "CUDA_VISIBLE_DEVICES": str(i % gpus)}
    return out


@contextmanager
def task_client(address: str) -> Iterator:
    """A distributed Client on `local[:N]` (a LocalCluster started here) or a running scheduler."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--dask needs dask.distributed; install it with pip install 'austack[dask]'") from None
    from ..prepare.dask_cluster import CONNECT_TIMEOUT, LOCAL, parse_address

    where, n = parse_address(address)
    cluster = None
    if where == LOCAL:
        cluster, n = start_local_cluster(n)
        client = Client(cluster)
        client.wait_for_workers(n)
    else:
        try:
            client = Client(where, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as e:
            raise ConfigError(f"cannot reach the Dask scheduler at {where} ({e}); start it with `dask "
                              f"scheduler` and workers with `dask worker ADDRESS`, or use --dask local:N") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def task_threads(hosts: dict[str, tuple[str, int]]) -> int:
    """torch threads per task: the cores of the busiest host over its workers, so every task,
    wherever it lands, runs on the same number of threads (and so gives the same numbers)."""
    per_host: dict[str, list[int]] = {}
    for host, cores in hosts.values():
        per_host.setdefault(host, []).append(cores)
    return max(1, min(min(c) // len(c) for c in per_host.values())) if per_host else 1


# ---------------------------------------------------------------- the client side

@dataclass
class _Plan:
    run: object                # RunContext, as the client sees it
    cfg: BenchConfig           # the config as given (its device is the workers')
    db: object                 # ResultsDB
    outcome: BenchOutcome
    slots: dict[int, int]      # fold -> index into outcome.rows


def plan(cfgs: Sequence[BenchConfig], console: Console) -> tuple[list[_Plan], list[Task]]:
    """Check every config before any task starts; the tasks are the folds not yet recorded."""
    plans, tasks, dbs = [], [], {}
    try:
        _plan_each(cfgs, console, plans, tasks, dbs)
    except BaseException:
        for db in dbs.values():
            db.close()
        raise
    return plans, tasks


def _plan_each(cfgs, console, plans: list, tasks: list, dbs: dict) -> None:
    from .preflight import open_run

    for i, cfg in enumerate(cfgs):
        # the client may have no GPU: it checks on the CPU (the device is not hashed)
        run = open_run(replace(cfg, device="cpu"), console)
        db_path = str(Path(run.cfg.db).expanduser().resolve())
        if db_path not in dbs:   # a sweep's points share one database: opened once
            dbs[db_path] = _open_db(db_path)
        db = dbs[db_path]
        done = db.recorded(run.config_hash, run.store.identity, run.cfg.seed)
        p = _Plan(run, cfg, db, BenchOutcome([], [], db=db.path), {})
        name = cfg.recipe or f"{cfg.backbone}+{cfg.loss}"
        sent = replace(run.cfg, device=cfg.device, out_dir=str(Path(cfg.out_dir).expanduser().resolve()))
        for k in run.cfg.folds:
            p.slots[k] = len(p.outcome.rows)
            if k in done:
                p.outcome.reused.append(k)
                p.outcome.ids.append(done[k])
                p.outcome.rows.append(db.get(done[k]))
            else:
                p.outcome.ids.append(-1)
                p.outcome.rows.append(None)
                tasks.append(Task(i, replace(sent, folds=(k,)), k, name, run.config_hash))
        plans.append(p)


def land(p: _Plan, result: TaskResult) -> ResultRow:
    """The row as a local run would have built it: the client's paths and config; a worker's
    shipped files written into the client's run dir first (atomically, like the engine's)."""
    row, run = result.row, p.run
    run_dir = run.run_dir(row.fold)
    if result.files:
        run_dir.mkdir(parents=True, exist_ok=True)
        for name, data in result.files.items():
            atomic_write_bytes(run_dir / name, data)
    moved = {a: (str(run_dir / Path(getattr(row, a)).name) if getattr(row, a) else None)
             for a in ("predictions", "detector")}
    config = replace(run.cfg, device=p.cfg.device).to_dict()
    return replace(row, run_dir=str(run_dir), store=run.store.path, config=config, **moved)


def run_tasks(cfgs: Sequence[BenchConfig], address: str, *, console: Console | None = None,
              log: Console | None = None, threads: int | None = None,
              on_done: Callable[[Task, TaskResult], None] | None = None) -> TaskRun:
    """Run every fold of every config as a task on the cluster at `address`; record each row
    as it comes back. Returns one BenchOutcome per config (folds in order); a task that failed
    twice leaves its fold's row None and id -1, and is listed in `lost`. `console` gets a line
    per task and the bar; `log` (default: `console`) the resolved configs."""
    from .bench import print_run

    console = console if console is not None else Console(stderr=True)
    say = lambda text: console.print(text, markup=False, highlight=False)
    t0 = time.perf_counter()
    log = log if log is not None else console
    plans, tasks = plan(cfgs, log)
    for p in plans:
        print_run(p.run)
        for k in p.outcome.reused:
            log.print(f"fold {k}: already recorded as row {p.outcome.ids[p.slots[k]]} (config "
                      f"{p.run.config_hash}, seed {p.run.cfg.seed}); not run again", markup=False, highlight=False)
    report = TaskRun([p.outcome for p in plans], tasks=len(tasks))
    try:
        if tasks:
            _submit_all(plans, tasks, address, threads, report, console, say, on_done)
    finally:
        for db in {id(p.db): p.db for p in plans}.values():
            db.close()
    report.seconds = time.perf_counter() - t0
    return report


def _submit_all(plans, tasks, address, threads, report: TaskRun, console, say, on_done) -> None:
    from distributed import as_completed

    from ..progress import make_progress

    t_start = time.perf_counter()
    with task_client(address) as client, _markers(tasks) as markers:
        hosts = client.run(warm_worker)
        report.startup_s = time.perf_counter() - t_start
        report.workers = len(hosts)
        report.threads = threads or task_threads(hosts)
        say(f"{len(tasks)} task(s) on {len(hosts)} Dask worker(s), {report.threads} torch thread(s) each")
        futures = {client.submit(run_task, t.cfg, t.fold, report.threads, markers[t.cfg.out_dir], key=t.new_key(),
                                 pure=False, retries=TASK_RETRIES): t for t in tasks}
        with make_progress(console, unit="tasks") as bar:
            job = bar.add_task("tasks", total=len(tasks), detail="")
            for fut in as_completed(futures):
                task = futures[fut]
                _collect(plans[task.index], task, fut, report, say, on_done)
                bar.update(job, advance=1, detail=f"last: fold {task.fold} seed {task.cfg.seed}")
        report.tasks_s = time.perf_counter() - t_start - report.startup_s


def _collect(p: _Plan, task: Task, fut, report: TaskRun, say, on_done) -> None:
    try:
        result = fut.result()
    except Exception as e:   # the worker died twice (KilledWorker), or the task raised twice
        message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        report.lost.append(LostTask(task.label, message))
        say(f"{task.label}: FAILED twice, nothing recorded ({message})")
        return
    finally:
        fut.release()
    row = land(p, result)
    row_id, inserted = p.db.insert_once(row)
    if not inserted:   # another run recorded this fold meanwhile
        p.outcome.reused.append(task.fold)
        row = p.db.get(row_id)
    slot = p.slots[task.fold]
    p.outcome.rows[slot], p.outcome.ids[slot] = row, row_id
    f1 = f"F1 {100 * row.f1_mean:.1f}" if row.status == "ok" else f"error: {row.error}"
    where = ("resumed, " if result.resumed else "") + result.worker
    say(f"{task.label}: {f1}, {result.seconds:.0f} s ({where})"[:200])
    if on_done is not None:
        on_done(task, result)


@contextmanager
def _markers(tasks: Sequence[Task]) -> Iterator[dict[str, tuple[str, str]]]:
    """A marker file (path, secret content) in each --out-dir of these tasks, removed at the end:
    a worker that reads it back shares that folder with the client."""
    markers = {}
    try:
        for out_dir in sorted({t.cfg.out_dir for t in tasks}):
            token = secrets.token_hex(16)
            path = Path(out_dir) / f"{MARKER_PREFIX}{token[:8]}"
            path.write_text(token, encoding="utf-8")
            markers[out_dir] = (str(path), token)
        yield markers
    finally:
        for path, _ in markers.values():
            Path(path).unlink(missing_ok=True)
