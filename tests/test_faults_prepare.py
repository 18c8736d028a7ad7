"""`prepare` under faults: SIGKILL at random instants, SIGTERM, a full disk, a read-only
folder, damaged partial folders, and workers that must die with their parent.

Every resume must give the very bytes of a clean run (the store is deterministic)."""
from __future__ import annotations

import errno
import filecmp
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from austack.cli.main import cli
from austack.errors import StoreError
from austack.prepare import prepare
from austack.store import partial_path, verify
from austack.store import _parts, _writer

import _prepare_fake  # noqa: F401  (registers the test-fake reader)
from conftest import mount_tmpfs, wait_for

HERE = Path(__file__).parent
OPTS = {"landmarks": "shipped", "size": 64, "chunk_frames": 2}
CLI_OPTS = ["--landmarks", "shipped", "--size", "64"]
KILLS_PER_SETTING = 5


@pytest.fixture(scope="module")
def clean(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "clean.h5"
    prepare("test-fake", raw, out, **OPTS)
    return out


@pytest.fixture(scope="module")
def clean_cli(raw, tmp_path_factory):
    """The same store made by the CLI (its chunk size is the default)."""
    out = tmp_path_factory.mktemp("clean_cli") / "clean.h5"
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), *CLI_OPTS])
    assert res.exit_code == 0, res.output
    return out


RUN = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import _prepare_fake
    from austack.prepare import prepare

    def progress(done, total, subject):
        print(done, flush=True)
        time.sleep({pause})

    print("go", flush=True)
    prepare("test-fake", {raw!r}, {out!r}, workers={workers}, progress=progress, **{opts!r})
    print("done", flush=True)
""")


def _start(raw, out, workers: int, pause: float = 0.0, opts: dict = OPTS) -> subprocess.Popen:
    code = RUN.format(tests=str(HERE), raw=str(raw), out=str(out), workers=workers, pause=pause, opts=opts)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


def _run_seconds(raw, tmp_path, workers: int, opts: dict = OPTS) -> float:
    proc = _start(raw, tmp_path / "timing.h5", workers, opts=opts)
    wait_for(proc, "go")
    t0 = time.perf_counter()
    wait_for(proc, "done")
    span = time.perf_counter() - t0
    proc.wait()
    return span


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_at_random_instants_then_resume_gives_the_clean_bytes(raw, clean, tmp_path, workers):
    """Kills land anywhere: reading labels, mid-chunk, mid-write of a part, during assembly."""
    span = _run_seconds(raw, tmp_path, workers)
    rng = np.random.default_rng(1234 + workers)
    for k, delay in enumerate(rng.uniform(0, 1.1 * span, KILLS_PER_SETTING)):
        out = tmp_path / f"k{k}.h5"
        proc = _start(raw, out, workers)
        wait_for(proc, "go")
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)   # the run and its workers, as a crash would
        proc.wait()
        # killed after the rename but before the parts were removed: resume assembles again
        prepare("test-fake", raw, out, resume=True, **OPTS)
        assert not partial_path(out).exists()
        assert filecmp.cmp(out, clean, shallow=False), f"kill {k} after {delay:.3f} s of {span:.3f} s"
    assert verify(out).ok


def test_sigkill_of_a_device_run_then_resume_gives_its_clean_bytes(raw, tmp_path):
    """`--device` (here the CPU, through the same torch code) resumes as the CPU path does."""
    pytest.importorskip("torchvision")
    opts = dict(OPTS, device="cpu")
    clean_dev = tmp_path / "clean-dev.h5"
    prepare("test-fake", raw, clean_dev, **opts)
    span = _run_seconds(raw, tmp_path, 1, opts)
    for k, delay in enumerate(np.random.default_rng(77).uniform(0, 1.1 * span, 3)):
        out = tmp_path / f"d{k}.h5"
        proc = _start(raw, out, 1, opts=opts)
        wait_for(proc, "go")
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        prepare("test-fake", raw, out, resume=True, **opts)
        assert filecmp.cmp(out, clean_dev, shallow=False), f"kill {k} after {delay:.3f} s of {span:.3f} s"


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_parent(raw, tmp_path):
    proc = _start(raw, tmp_path / "orphans.h5", workers=2, pause=0.5)
    wait_for(proc, "2")       # a chunk is written: the pool is up
    workers = _children(proc.pid)
    assert len(workers) >= 2, workers
    os.kill(proc.pid, signal.SIGKILL)    # the parent only
    proc.wait()
    deadline = time.monotonic() + 5
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [w for w in workers if _alive(w)]
    for w in alive:
        os.kill(w, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their parent"


TERM_RUN = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import _prepare_fake
    import austack.prepare.run as p
    from austack.cli.main import cli

    real = p.process_chunk

    def slow(job):
        print("chunk", file=sys.stderr, flush=True)
        time.sleep(0.3)
        return real(job)

    p.process_chunk = slow
    cli(["prepare", "test-fake", {raw!r}, {out!r}, *{opts!r}])
""")


def test_sigterm_stops_like_ctrl_c_and_resumes(raw, clean_cli, tmp_path):
    out = tmp_path / "term.h5"
    code = TERM_RUN.format(tests=str(HERE), raw=str(raw), out=str(out), opts=CLI_OPTS)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "80"})
    for _ in range(3):         # a few chunks in
        assert proc.stderr.readline().strip() == "chunk"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, (stdout, stderr)
    assert "interrupted; rerun with --resume" in stdout + stderr and "Traceback" not in stdout + stderr
    assert partial_path(out).is_dir() and not out.exists()
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), *CLI_OPTS, "--resume"])
    assert res.exit_code == 0, res.output
    assert filecmp.cmp(out, clean_cli, shallow=False)


def _enospc_after(monkeypatch, module, name: str, calls: int) -> None:
    real, seen = getattr(module, name), []

    def failing(*args, **kw):
        seen.append(1)
        if len(seen) > calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kw)

    monkeypatch.setattr(module, name, failing)


@pytest.mark.parametrize("where", ["part", "assembly"])
def test_a_full_disk_is_one_line_and_resumable(raw, clean_cli, tmp_path, monkeypatch, where):
    out = tmp_path / "full.h5"
    if where == "part":
        _enospc_after(monkeypatch, _parts, "_save_npz", 3)
    else:
        _enospc_after(monkeypatch, _writer, "assemble", 0)
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), *CLI_OPTS])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "no space left" in res.output and "--resume" in res.output and str(tmp_path) in res.output
    assert not list(tmp_path.rglob("*.tmp")) and not out.exists()   # no torn file anywhere
    monkeypatch.undo()
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), *CLI_OPTS, "--resume"])
    assert res.exit_code == 0, res.output
    assert filecmp.cmp(out, clean_cli, shallow=False)


def test_a_really_full_tmpfs(raw, clean_cli, tmp_path):
    """ENOSPC from the kernel (root only: a 200 kB tmpfs), then room made, then --resume."""
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "size=200k"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        out = disk / "s.h5"
        res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), *CLI_OPTS, "--size", "128"])
        assert res.exit_code == 1 and "Traceback" not in res.output, res.output
        assert "no space left" in res.output and str(disk) in res.output
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(out), *CLI_OPTS, "--size", "128",
                                       "--resume"])
        assert res.exit_code == 0, res.output
        assert verify(out).ok
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_read_only_folder_is_one_line(raw, read_only):
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(raw), str(read_only / "s.h5"), *CLI_OPTS])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "not writable" in res.output and str(read_only) in res.output


def test_damaged_partial_folders_resume(raw, clean, tmp_path):
    out = tmp_path / "d.h5"

    def stop(done, total, subject):
        if done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare("test-fake", raw, out, progress=stop, **OPTS)
    part = partial_path(out)
    for chunk in (part / "s000000-c00001.npz", sorted(part.glob("*.npz"))[-1]):   # parts cut short: of a
        chunk.write_bytes(chunk.read_bytes()[:100])           # whole session, of the unfinished one
    (part / ".s000009-c00000.npz.x.tmp").write_bytes(b"torn")  # a write killed before its rename
    (part / "store.h5").write_bytes(b"\x89HDF torn")           # an assembly killed midway
    report = prepare("test-fake", raw, out, resume=True, **OPTS)
    assert report.resumed_sessions == 1 and report.written_frames == 24 - 2 - 4   # kept: S1/T1 c0, S1/T2
    assert filecmp.cmp(out, clean, shallow=False)


def test_an_older_partial_file_gets_a_clear_message(raw, tmp_path):
    out = tmp_path / "old.h5"
    partial_path(out).write_bytes(b"an HDF5 partial file from schema 1")
    with pytest.raises(StoreError, match="older austack.*--force"):
        prepare("test-fake", raw, out, resume=True, **OPTS)
    prepare("test-fake", raw, out, force=True, **OPTS)
    assert verify(out).ok


def test_any_executor_runs_the_jobs_spawn_included(raw, clean, tmp_path):
    """Nothing assumes fork: jobs and results pickle, workers need no inherited state."""
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        prepare("test-fake", raw, tmp_path / "spawn.h5", executor=pool, window=3, **OPTS)
    assert filecmp.cmp(tmp_path / "spawn.h5", clean, shallow=False)


def test_a_broken_pool_names_the_chunk_and_resume_completes(raw, clean, tmp_path):
    """A worker killed under a plain process pool breaks it: one line naming the session,
    nothing half-written kept, and --resume gives the clean bytes."""
    from austack.prepare.executors import WorkerLostError

    out = tmp_path / "broken.h5"
    with ProcessPoolExecutor(2) as pool:
        killed = []

        def progress(done, total, subject):
            if not killed:   # once, after the first chunk came back: the others are in flight
                killed.extend(p.pid for p in pool._processes.values())   # the pool's own workers
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)

        with pytest.raises(WorkerLostError, match=r"chunk \d+ of session S\d/T\d failed on the executor "
                                                  r"\(BrokenProcessPool.*rerun with --resume"):
            prepare("test-fake", raw, out, executor=pool, window=4, progress=progress, **OPTS)
    assert not out.exists() and partial_path(out).is_dir()
    prepare("test-fake", raw, out, resume=True, **OPTS)
    assert filecmp.cmp(out, clean, shallow=False)
