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


# --- 2. a full disk while the final file is assembled -----------------------------------------
def _prepare_on_a_full_disk(raw, tmp_path, patch: str = "") -> None:
    """prepare (raw store) on a real tmpfs with room for the parts but not for the final file
    beside them (root), with `patch` run first in the child: one clean line and exit 1, the
    parts kept; after the disk grows, --resume gives the bytes of a run that had room."""
    opts = ["--landmarks", "shipped", "--size", "256", "--store", "raw"]
    clean = tmp_path / "clean.h5"
    assert CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(clean), *opts]).exit_code == 0
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, f"size={clean.stat().st_size + (1 << 20)}"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        out = disk / "s.h5"
        code = (f"import sys; sys.path.insert(0, sys.argv[1]); import _prepare_fake; {patch}"
                "from austack.cli.main import cli; cli(sys.argv[2:])")
        run = subprocess.run([sys.executable, "-c", code, str(HERE), "prepare", "test-fake", str(raw), str(out), *opts],
                             capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        err = run.stdout + run.stderr
        assert run.returncode == 1 and "Traceback" not in err and "Exception ignored" not in err, err
        assert "no space left" in err and "--resume" in err and str(out) in err
        part = partial_path(out)
        assert not out.exists() and not (part / "store.h5").exists() and len(list(part.glob("*.npz"))) > 0
        subprocess.run(["mount", "-o", f"remount,size={3 * clean.stat().st_size}", str(disk)], check=True)
        res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), *opts, "--resume"])
        assert res.exit_code == 0, res.output
        assert filecmp.cmp(out, clean, shallow=False)
        assert os.stat(out).st_blocks * 512 < clean.stat().st_size + (1 << 20)   # no reservation left over
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_disk_that_fills_during_assembly_is_one_line_and_resumable(raw, tmp_path):
    _prepare_on_a_full_disk(raw, tmp_path)


def test_a_disk_filled_after_the_room_check_is_one_line_and_resumable(raw, tmp_path):
    """Another program fills the disk between the room check and the writing (here: the check
    is skipped): the space reserved before HDF5 writes gives the same clean line, where HDF5
    used to meet the full disk mid-file and crash (exit 139)."""
    _prepare_on_a_full_disk(raw, tmp_path, "import austack.store._assemble as a; "
                                           "a.check_room = lambda folder, need: None; ")


@pytest.mark.parametrize("store", ["raw", "jpeg"])
def test_the_room_estimate_is_an_upper_bound(raw, tmp_path, store, monkeypatch):
    from austack.store import _assemble

    seen = {}
    real = _assemble.check_room
    monkeypatch.setattr(_assemble, "check_room", lambda folder, need: (seen.update(need=need), real(folder, need)))
    out = tmp_path / "s.h5"
    prepare("test-fake", raw, out, **{**OPTS, "encoding": store})
    assert out.stat().st_size <= seen["need"] <= 2 * out.stat().st_size + (1 << 20)


# --- 7. a lock on the partial folder ----------------------------------------------------------
LOCKED = """
import sys, time
sys.path.insert(0, sys.argv[1])
from austack.store import StoreSettings
from austack.store._parts import PartDir
parts = PartDir(__import__("pathlib").Path(sys.argv[2]), None)
parts.lock()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_resume_on_one_partial_folder_is_refused(raw, tmp_path):
    from austack.errors import StoreError
    from conftest import wait_for

    out = tmp_path / "l.h5"

    def stop(done, total, subject):
        if done >= 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare("test-fake", raw, out, progress=stop, **OPTS)
    before = sorted(p.name for p in partial_path(out).iterdir())
    holder = subprocess.Popen([sys.executable, "-c", LOCKED, str(HERE), str(partial_path(out))],
                              stdout=subprocess.PIPE, text=True)
    try:
        wait_for(holder, "locked")
        with pytest.raises(StoreError, match=rf"being written by another `austack prepare` \(pid {holder.pid}\)"):
            prepare("test-fake", raw, out, resume=True, **OPTS)
        assert sorted(p.name for p in partial_path(out).iterdir()) == before   # nothing touched
    finally:
        holder.kill()
        holder.wait()
    prepare("test-fake", raw, out, resume=True, **OPTS)   # the holder gone, the resume runs
    assert verify(out).ok


def test_a_lock_does_not_pass_to_forked_workers(raw, tmp_path):
    """Workers forked while the folder is held do not hold it (a POSIX record lock)."""
    from austack.store._parts import PartDir

    folder = tmp_path / "p"
    folder.mkdir()
    parts = PartDir(folder, None)
    parts.lock()
    pid = os.fork()
    if pid == 0:   # the child: the lock is the parent's, so the child cannot take it either way
        os._exit(0)
    os.waitpid(pid, 0)
    probe = subprocess.run([sys.executable, "-c", LOCKED.replace("time.sleep(60)", ""), str(HERE), str(folder)],
                           capture_output=True, text=True)
    assert "being written by another" in probe.stderr and str(os.getpid()) in probe.stderr
    parts.unlock()
    assert subprocess.run([sys.executable, "-c", LOCKED.replace("time.sleep(60)", ""), str(HERE), str(folder)],
                          capture_output=True).returncode == 0


# --- 9. leftovers of a kill while the partial folder was removed ------------------------------
def test_leftover_aside_folders_are_swept_by_a_later_run(raw, tmp_path):
    out = tmp_path / "s.h5"
    prepare("test-fake", raw, out, **OPTS)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = os.getppid()
    for pid, what in ((dead.pid, "old"), (dead.pid + 0, "new"), (alive, "old")):
        stale = tmp_path / f".s.h5.partial.{pid}.{what}"
        stale.mkdir(exist_ok=True)
        (stale / "s000000-c00000.npz").write_bytes(b"parts")
    prepare("test-fake", raw, out, resume=True, **OPTS)        # already complete: nothing to write
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == [f".s.h5.partial.{alive}.old"]              # only a live process's own
    shutil.rmtree(tmp_path / left[0])
    (tmp_path / f".s.h5.partial.{dead.pid}.old").mkdir()
    prepare("test-fake", raw, out, force=True, **OPTS)          # and any run that writes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --- 10. the shard folder's name in docs and help ---------------------------------------------
def test_docs_and_help_name_the_shard_folder_as_it_is_made(raw, tmp_path):
    from austack.prepare.shards import shards_path

    assert shards_path(tmp_path / "OUT.h5").name == "OUT.h5.shards"
    res = CliRunner().invoke(cli, ["prepare", "--help"])
    assert "OUT.h5.shards/" in res.output and "OUT.shards" not in res.output
    for doc in ("scale-out.md", "store-schema.md"):
        text = (HERE.parent / "docs" / doc).read_text()
        assert "OUT.h5.shards/" in text and "OUT.shards/" not in text, doc


# --- 11. the smaller ones ---------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["synth", "{ro}/raw", "--layout", "bp4d", "--subjects", "2", "--sessions", "1", "--frames", "2"],
    ["demo", "--out", "{ro}/demo", "--quick"],
    ["study", "noise", "--out", "{ro}/noise", "--quick"],
    ["study", "sweep", "demo-wce", "--data", "{store}", "--out", "{ro}/sweep", "--param", "lr=1e-3,3e-3"],
])
def test_a_read_only_output_folder_is_one_line(command, read_only, tiny_store):
    args = [a.format(ro=read_only, store=tiny_store) for a in command]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output and str(read_only) in " ".join(res.output.split()), res.output


def test_an_interrupt_names_the_partial_folder_only_once_it_exists(raw, tmp_path, monkeypatch):
    import austack.cli.prepare as cli_prepare

    def interrupted(*args, **kw):   # Ctrl-C while the labels are read
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_prepare, "prepare", interrupted)
    out = tmp_path / "s.h5"
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), *CLI_OPTS])
    assert res.exit_code == 1 and "before anything was saved" in res.output and ".partial" not in res.output
    partial_path(out).mkdir()
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), *CLI_OPTS, "--resume"])
    assert res.exit_code == 1 and "--resume" in res.output
    assert str(partial_path(out)) in " ".join(res.output.split())


def test_disfa_label_files_with_a_bom_lose_no_row(tmp_path):
    """An editor re-saving a label file adds a BOM, even before the one it had."""
    sys.path.insert(0, str(HERE))
    from austack.datasets import create_reader
    from austack.synth.layouts.disfa import DisfaLayout
    from fake_sessions import make_session

    DisfaLayout().write(tmp_path, [make_session("SN003", "left", 6, seed=0)], np.random.default_rng(0))
    (clean,), report = create_reader("disfa", tmp_path).read_all()
    kinds = sorted(a.kind for a in report.items)
    for p in tmp_path.rglob("*_au*.txt"):
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    (read,), report = create_reader("disfa", tmp_path).read_all()
    assert [f.frame for f in read.frames] == [f.frame for f in clean.frames] == [1, 2, 3, 4, 5, 6]
    assert all(np.array_equal(a.intensities, b.intensities) for a, b in zip(read.frames, clean.frames))
    assert sorted(a.kind for a in report.items) == kinds


SHUTDOWN = """
import logging, sys
from distributed.diagnostics.plugin import WorkerPlugin
from austack.prepare.dask_cluster import dask_executor

class Racy(WorkerPlugin):
    # what a worker whose heartbeat is in flight when the scheduler goes logs at its close
    def teardown(self, worker):
        try:
            raise OSError("Stream is closed")
        except OSError:
            logging.getLogger("distributed.worker").error("shutdown race", exc_info=True)

def during_run():
    logging.getLogger("distributed.worker").error("an error during the run")

if __name__ == "__main__":
    with dask_executor("local:1") as (pool, threads):
        client = pool._client
        client.register_plugin(Racy())
        client.run(during_run)
        assert pool.submit(sum, [1, 2]).result() == 3
    print("closed", flush=True)
"""


def test_a_local_clusters_shutdown_prints_no_traceback(tmp_path):
    """`prepare --dask local:N` printed a traceback at exit under load: Dask logging a race
    of its own shutdown. Its loggers are silenced for the shutdown only (run errors show)."""
    pytest.importorskip("distributed")
    script = tmp_path / "shutdown.py"
    script.write_text(SHUTDOWN)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "closed" in run.stdout, run.stderr
    assert "an error during the run" in run.stderr
    assert "shutdown race" not in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_force_does_not_remove_a_folder_another_run_is_writing(raw, tmp_path):
    from austack.errors import StoreError
    from conftest import wait_for

    out = tmp_path / "f.h5"
    partial_path(out).mkdir()
    holder = subprocess.Popen([sys.executable, "-c", LOCKED, str(HERE), str(partial_path(out))],
                              stdout=subprocess.PIPE, text=True)
    try:
        wait_for(holder, "locked")
        with pytest.raises(StoreError, match="being written by another"):
            prepare("test-fake", raw, out, force=True, **OPTS)
        assert partial_path(out).is_dir()
    finally:
        holder.kill()
        holder.wait()
    prepare("test-fake", raw, out, force=True, **OPTS)
    assert verify(out).ok
