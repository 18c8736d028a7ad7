"""`bench --dask` and `study sweep --dask`: every (recipe, fold, seed) one task on Dask gives
exactly the local run's rows; a worker killed mid-task is retried (resuming from `last.pt`),
one killed twice is reported and recorded by nothing, and the next run completes it."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from click.testing import CliRunner
from rich.console import Console

pytest.importorskip("distributed")

from austack.cli.main import cli  # noqa: E402
from austack.runs.config import BenchConfig  # noqa: E402
from austack.engine.distributed_tasks import (SHIPPED, plan, land, run_task, run_tasks,  # noqa: E402
                                              start_local_cluster, task_threads, worker_specs)
from austack.engine.record import run_and_record  # noqa: E402
from austack.results.db import ResultsDB  # noqa: E402

FAST = dict(backbone="test_tiny", loss="wce", epochs=2, batch_size=16, lr=3e-3, image_size=40, device="cpu",
            workers=0)
FLAGS = ["--epochs", "2", "--batch-size", "16", "--lr", "3e-3", "--image-size", "40", "--device", "cpu",
         "--workers", "0"]


def _cfg(store, out, **kw) -> BenchConfig:
    return BenchConfig(**{**FAST, **kw}, data=str(store), out_dir=str(out / "runs"), db=str(out / "r.sqlite"))


def _f1(db) -> dict[int, list[float]]:
    with ResultsDB(db) as d:
        return {r.fold: r.f1 for r in d.query(status=None)}


@pytest.fixture(scope="module")
def local(tiny_store, tmp_path_factory, one_torch_thread):
    """The local run of every fold, on one torch thread: what every Dask run must equal."""
    out = tmp_path_factory.mktemp("local")
    outcome = run_and_record(_cfg(tiny_store, out))
    assert [r.status for r in outcome.rows] == ["ok"] * 3
    return {r.fold: r.f1 for r in outcome.rows}


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of two worker processes for the module (as `--dask local:2` starts it)."""
    cluster, n = start_local_cluster(2)
    from distributed import Client

    with Client(cluster) as client:
        client.wait_for_workers(n)
    yield cluster.scheduler_address
    cluster.close()


def test_bench_fold_all_on_local2_gives_the_local_f1_and_reruns_nothing(tiny_store, tmp_path, local):
    db, runs = tmp_path / "r.sqlite", tmp_path / "runs"
    args = ["bench", "test_tiny", "wce", "--data", str(tiny_store), "--fold", "all", *FLAGS, "--dask", "local:2",
            "--task-threads", "1", "--out-dir", str(runs), "--db", str(db)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert _f1(db) == local
    for fold in (1, 2, 3):
        (run_dir,) = runs.glob(f"*/fold{fold}")
        assert {"epochs.csv", "detector.pt", "predictions.npz", "last.pt"} <= {p.name for p in run_dir.iterdir()}
    assert not list(runs.glob(".austack-dask-*")), "the shared-folder marker was left behind"
    again = CliRunner().invoke(cli, args)    # every task recorded: no cluster, no training
    assert again.exit_code == 0, again.output
    with ResultsDB(db) as d:
        assert d.count() == 3


def test_a_worker_without_the_out_dir_ships_its_files_back(tiny_store, tmp_path, local, one_torch_thread):
    cfg = _cfg(tiny_store, tmp_path, folds=(3,))
    plans, tasks = plan([cfg], Console(quiet=True))
    (task,) = tasks
    result = run_task(task.cfg, 3, 1, (str(tmp_path / "no-such-marker"), "token"))
    assert not result.shared and set(result.files) == set(SHIPPED)
    row = land(plans[0], result)
    assert row.f1 == local[3]
    run_dir = plans[0].run.run_dir(3)
    assert row.detector == str(run_dir / "detector.pt") and (run_dir / "detector.pt").is_file()
    from austack.fileio import sha256_file
    assert sha256_file(row.predictions) == row.predictions_sha256
    assert not (tmp_path / "runs").joinpath(run_dir.parent.name, "fold3", "last.pt").exists()


def test_local_workers_each_see_their_own_gpu():
    spec = {"cls": object, "options": {"nthreads": 1}}
    specs = worker_specs(spec, 3, gpus=2)
    assert [s["options"]["env"]["CUDA_VISIBLE_DEVICES"] for s in specs.values()] == ["0", "1", "0"]
    assert "env" not in worker_specs(spec, 2, gpus=0)["task-1"]["options"] and "env" not in spec["options"]


def test_threads_per_task_follow_the_busiest_host():
    assert task_threads({"a": ("h1", 8), "b": ("h1", 8), "c": ("h2", 16)}) == 4
    assert task_threads({"a": ("h1", 1), "b": ("h1", 1)}) == 1


def test_sweep_over_two_values_runs_through_dask(tiny_store, tmp_path, local, cluster):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("".join(f"{k}: {v}\n" for k, v in FAST.items() if k != "lr"))
    r = CliRunner().invoke(cli, ["study", "sweep", str(recipe), "--param", "lr=3e-3,1e-3", "--data",
                                 str(tiny_store), "--out", str(tmp_path / "sweep"), "--folds", "1", "--threads",
                                 "1", "--dask", cluster])
    assert r.exit_code == 0, r.output
    with ResultsDB(tmp_path / "sweep" / "results.sqlite") as d:
        rows = {r.config["lr"]: r for r in d.query()}
    assert set(rows) == {3e-3, 1e-3} and rows[3e-3].config_hash != rows[1e-3].config_hash
    assert rows[3e-3].f1 == local[1]     # the same settings as the local run


def test_noise_study_refuses_a_bad_dask_address_before_making_data(tmp_path):
    r = CliRunner().invoke(cli, ["study", "noise", "--quick", "--out", str(tmp_path / "n"), "--dask", "local:0"])
    assert r.exit_code != 0 and "local:N" in r.output and not (tmp_path / "n").exists()


def _executing(dask_worker):
    """On a worker: its pid and the keys it is running now (not those queued behind them)."""
    return os.getpid(), [str(k) for k in dask_worker.state.executing]


class Killer(threading.Thread):
    """SIGKILLs the worker running fold 1 once it has saved an epoch (its retry must resume
    from that last.pt), and the worker running fold 2 each time it starts it (twice: lost)."""

    def __init__(self, address, runs):
        super().__init__(daemon=True)
        self.address, self.runs, self.stop, self.kills = address, runs, threading.Event(), {1: 0, 2: 0}
        self.killed: set[int] = set()

    def _kill(self, client, fold) -> bool:
        try:
            running = client.run(_executing)
        except Exception:   # a worker died meanwhile; look again
            return False
        pids = [pid for pid, keys in running.values() if pid not in self.killed
                and any(f"-fold{fold}-" in k for k in keys)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.killed.update(pids)
        return bool(pids)

    def run(self):
        from distributed import Client

        with Client(self.address) as client:
            while not self.stop.is_set():
                if self.kills[1] == 0 and list(self.runs.glob("*/fold1/last.pt")) and self._kill(client, 1):
                    self.kills[1] += 1
                if self.kills[2] < 2 and self._kill(client, 2):
                    self.kills[2] += 1
                time.sleep(0.01)


def test_killed_workers_retry_once_then_report_and_a_rerun_completes(tiny_store, tmp_path, local, cluster):
    cfg = _cfg(tiny_store, tmp_path)
    killer = Killer(cluster, tmp_path / "runs")
    killer.start()
    resumed = {}
    try:
        report = run_tasks([cfg], cluster, threads=1, on_done=lambda t, r: resumed.setdefault(t.fold, r.resumed))
    finally:
        killer.stop.set()
        killer.join()
    assert killer.kills == {1: 1, 2: 2} and resumed == {1: True, 3: False}
    assert [t.label.split(" [")[1].split("] ")[1] for t in report.lost] == ["fold 2 seed 0"]
    assert _f1(tmp_path / "r.sqlite") == {1: local[1], 3: local[3]}   # nothing of fold 2 recorded
    again = run_tasks([cfg], cluster, threads=1)
    assert report.tasks == 3 and again.tasks == 1 and not again.lost
    assert _f1(tmp_path / "r.sqlite") == local


def _malloc_trim():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_bench_workers_keep_glibc_malloc_and_do_not_poison_this_process(cluster):
    """A nanny writes Dask's spawn environment into the process that makes it: made after the
    cluster's settings were lifted, it gave its worker MALLOC_TRIM_THRESHOLD_ and left it here
    for every worker spawned later (prepare's among them)."""
    from distributed import Client

    with Client(cluster) as client:
        assert set(client.run(_malloc_trim).values()) == {None}
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") is None
