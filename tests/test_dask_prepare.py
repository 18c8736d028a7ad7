"""`prepare --dask`: a real scheduler and two worker processes on 127.0.0.1, a LocalCluster,
and a worker killed mid-run; every store must equal the local run's, byte for byte."""
from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

distributed = pytest.importorskip("distributed")

from austack.cli.main import cli  # noqa: E402
from austack.prepare.dask_cluster import parse_address  # noqa: E402
from austack.errors import ConfigError  # noqa: E402
from austack.prepare import prepare  # noqa: E402
from austack.store import verify  # noqa: E402

from conftest import same_contents  # noqa: E402
import _prepare_fake  # noqa: E402,F401  (registers the test-fake reader)

OPTS = {"landmarks": "shipped", "size": 64, "chunk_frames": 2}
COLUMNS = ("labels", "landmarks", "matrix", "face", "landmark_origin", "frame", "subject", "session", "split")


@pytest.fixture(scope="module")
def local(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "local.h5"
    prepare("test-fake", raw, out, **OPTS)
    return out


def _dask(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


@pytest.fixture
def scheduler(tmp_path):
    """A scheduler and two single-threaded worker processes (no nanny: a killed one stays dead)."""
    sfile = tmp_path / "scheduler.json"
    procs = [_dask("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(sfile))]
    try:
        for _ in range(2):
            procs.append(_dask("distributed.cli.dask_worker", "--scheduler-file", str(sfile), "--nthreads", "1",
                               "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"))
        with distributed.Client(scheduler_file=str(sfile), timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
            yield client.scheduler.address, procs[1:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def test_addresses_parse():
    assert parse_address("local") == ("local", None)
    assert parse_address("local:3") == ("local", 3)
    assert parse_address("tcp://10.0.0.1:8786") == ("tcp://10.0.0.1:8786", None)
    for bad in ("local:0", "local:x", " "):
        with pytest.raises(ConfigError):
            parse_address(bad)


def test_an_unreachable_scheduler_is_one_line(raw, tmp_path, monkeypatch):
    monkeypatch.setattr("austack.prepare.dask_cluster.CONNECT_TIMEOUT", "1s")
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        prepare("test-fake", raw, tmp_path / "x.h5", dask="tcp://127.0.0.1:9", **OPTS)
    assert not (tmp_path / "x.h5").exists()


def test_a_scheduler_with_two_workers_gives_the_local_bytes(raw, local, scheduler, tmp_path):
    address, _ = scheduler
    out = tmp_path / "dask.h5"
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), "--dask", address, "--landmarks",
                                   "shipped", "--size", "64"])
    assert res.exit_code == 0, res.output
    report = prepare("test-fake", raw, tmp_path / "lib.h5", dask=address, **OPTS)
    assert report.written_frames == report.frames == 24
    same_contents(tmp_path / "lib.h5", local, COLUMNS)
    assert filecmp.cmp(tmp_path / "lib.h5", local, shallow=False)
    same_contents(out, local, COLUMNS)   # the CLI's chunk size is the default: same contents, other provenance
    assert verify(out).ok


def test_a_worker_killed_mid_run_is_recovered(raw, local, scheduler, tmp_path):
    address, workers = scheduler
    killed = []

    def progress(done, total, subject):
        if not killed and done > 0:   # results are coming back: both workers hold chunks
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(time.perf_counter())

    out = tmp_path / "killed.h5"
    report = prepare("test-fake", raw, out, dask=address, progress=progress, **OPTS)
    assert killed and workers[0].wait(timeout=10) == -signal.SIGKILL
    assert report.frames == 24 and report.written_frames == 24
    assert filecmp.cmp(out, local, shallow=False)


def test_a_local_cluster_gives_the_local_bytes(raw, local, tmp_path):
    out = tmp_path / "lc.h5"
    prepare("test-fake", raw, out, dask="local:2", **OPTS)
    assert filecmp.cmp(out, local, shallow=False)


def test_dask_with_workers_is_refused(raw, tmp_path):
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(tmp_path / "o.h5"), "--dask", "local:2",
                                   "--workers", "2"])
    assert res.exit_code == 2 and "--workers and --dask" in res.output


def _worker_settings():
    import dask

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS"), \
        dask.config.get("distributed.worker.profile.enabled")


def _opencv_threads():
    import cv2

    return cv2.getNumThreads()


def test_a_local_cluster_keeps_glibc_malloc_and_skips_the_profiler():
    """Dask's MALLOC_TRIM_THRESHOLD_ turns off glibc's adaptive mmap threshold (a page fault per
    page of every decoded frame); the profiler samples threads for a dashboard nobody has."""
    from austack.prepare.dask_cluster import _client, warm_worker

    client, cluster = _client("local:1")
    try:
        assert list(client.run(_worker_settings).values()) == [(None, "1", False)]
        client.run(warm_worker)   # what dask_executor sends each worker first
        assert list(client.run(_opencv_threads).values()) == [1]
    finally:
        client.close()
        cluster.close()


def test_the_documented_worker_config_reaches_nanny_workers(tmp_path):
    """docs/dask/austack.yaml, in DASK_CONFIG, gives hand-started nanny workers what
    `--dask local:N` gives its own."""
    sfile = tmp_path / "scheduler.json"
    env = dict(os.environ, DASK_CONFIG=str(Path(__file__).parents[1] / "docs" / "dask"),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    procs = [_dask("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(sfile))]
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                       str(sfile), "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        with distributed.Client(scheduler_file=str(sfile), timeout="60s") as client:
            client.wait_for_workers(1, timeout=60)
            assert list(client.run(_worker_settings).values()) == [(None, "1", False)]
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
