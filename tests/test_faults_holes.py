"""The last holes of the fault campaign on the store side: bench on damaged image bytes, a
full disk while the final file is assembled, virtual stores that repeat byte for byte, a
lock on the partial folder, umask-respecting modes, leftovers of killed removals, and the
small ones (the shard folder's name, SIGINT before the partial folder exists, a DISFA BOM)."""
from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from austack.cli.main import cli
from austack.prepare import prepare
from austack.store import partial_path, verify

import _prepare_fake  # noqa: F401  (registers the test-fake reader)
from conftest import mount_tmpfs

HERE = Path(__file__).parent
OPTS = {"landmarks": "shipped", "size": 64, "chunk_frames": 3}
CLI_OPTS = ["--landmarks", "shipped", "--size", "64"]


# --- 3. virtual stores repeat byte for byte ---------------------------------------------------
def test_two_virtual_runs_are_byte_identical(raw, tmp_path):
    outs = []
    for k in (1, 2):
        out = tmp_path / f"r{k}" / "v.h5"
        prepare("test-fake", raw, out, **OPTS, shards=True, shard_sessions=2, virtual=True)
        outs.append(out)
    with h5py.File(outs[0], "r") as f:
        assert f["images"].is_virtual
    assert filecmp.cmp(*outs, shallow=False)
    assert verify(outs[0]).ok


# --- 1. bench refuses a store whose images fail their digests --------------------------------
def _bench(store, tmp_path):
    return CliRunner().invoke(cli, ["bench", "test_tiny", "wce", "--data", str(store), "--fold", "1", "--epochs",
                                    "1", "--batch-size", "8", "--image-size", "40", "--device", "cpu", "--workers",
                                    "0", "--out-dir", str(tmp_path / "runs"), "--db", str(tmp_path / "r.sqlite")])


def test_bench_refuses_images_that_fail_their_digests(tiny_store, tmp_path):
    from austack.results.db import ResultsDB
    from austack.store import check_images

    bad = tmp_path / "bad.h5"
    shutil.copy(tiny_store, bad)
    with h5py.File(bad, "r+") as f:   # another valid face image, digests untouched
        f["images"][0] = f["images"][1]
        subject = f["subject"].asstr()[0]
    res = _bench(bad, tmp_path)
    assert res.exit_code == 1 and "Traceback" not in res.output and res.exception is not None, res.output
    message = " ".join(res.output.split())   # one line, however a terminal wraps it
    assert f"{subject}/T1" in message and "austack verify" in message and "1 session(s)" in message
    if (tmp_path / "r.sqlite").exists():
        with ResultsDB(tmp_path / "r.sqlite") as db:
            assert db.query(status=None) == []
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.pt"))
    # the intact store: read once, then vouched for by the cache until its file changes
    good = tmp_path / "good.h5"
    shutil.copy(tiny_store, good)
    assert check_images(good) is True and check_images(good) is False
    os.utime(good, ns=(1, 1))
    assert check_images(good) is True
