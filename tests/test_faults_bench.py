"""`austack bench` killed at random instants: a rerun finishes with the uninterrupted numbers,
and the database holds exactly one row per fold. Kills land anywhere: building the fold, mid
epoch, while `last.pt`, `best.pt`, the detector or the predictions are written, or while the
row is inserted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from austack.results.db import ResultsDB

KILLS = 4


def _args(store, out):
    return [sys.executable, "-m", "austack", "bench", "test_tiny", "wce", "--data", str(store),
            "--fold", "1,2", "--epochs", "2", "--batch-size", "16", "--lr", "3e-3", "--image-size", "40",
            "--device", "cpu", "--workers", "0", "--out-dir", str(out / "runs"), "--db", str(out / "r.sqlite")]


def _run(store, out, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "80"}
    return subprocess.Popen(_args(store, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, **kw)


@pytest.fixture(scope="module")
def clean(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    t0 = time.perf_counter()
    proc = _run(tiny_store, out)
    assert proc.wait() == 0, proc.stderr.read().decode()
    with ResultsDB(out / "r.sqlite") as db:
        return {r.fold: r.f1 for r in db.query()}, time.perf_counter() - t0


def test_sigkill_at_random_instants_then_rerun_gives_the_same_rows(tiny_store, tmp_path, clean):
    expected, span = clean
    rng = np.random.default_rng(7)
    for k, delay in enumerate(rng.uniform(0.2 * span, span, KILLS)):
        out = tmp_path / f"k{k}"
        proc = _run(tiny_store, out)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rerun = _run(tiny_store, out)
        assert rerun.wait() == 0, rerun.stderr.read().decode()
        with ResultsDB(out / "r.sqlite") as db:
            rows = db.query(status=None)
            assert sorted(r.fold for r in rows) == [1, 2], f"kill {k} after {delay:.2f} s"
            assert {r.fold: r.f1 for r in rows} == expected, f"kill {k} after {delay:.2f} s of {span:.2f}"
        assert not list(out.rglob("*.tmp")), "a killed write left a temporary file under its final name's folder"


def test_sigterm_stops_cleanly_and_a_rerun_completes(tiny_store, tmp_path, clean):
    expected, span = clean
    proc = _run(tiny_store, tmp_path)
    time.sleep(0.5 * span)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode != 0 and "Traceback" not in err, err
    rerun = _run(tiny_store, tmp_path)
    assert rerun.wait() == 0
    with ResultsDB(tmp_path / "r.sqlite") as db:
        assert {r.fold: r.f1 for r in db.query()} == expected
