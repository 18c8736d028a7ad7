"""`prepare --shards`: shard stores written by the tasks, OUT.h5 copied from them (a plain
run's bytes) or virtual over them (the same contents, row for row); kills at random instants,
a worker dying mid-shard, a missing shard, and the readers of the virtual form."""
from __future__ import annotations

import filecmp
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from austack.cli.main import cli
from austack.data import AUStoreDataset
from austack.errors import StoreError, StoreExistsError
from austack.prepare.executors import WorkerLostError
from austack.prepare import prepare
from austack.prepare.shards import shards_path
from austack.store import check_store, open_store, store_identity, verify

from conftest import same_contents, wait_for  # noqa: E402
import _prepare_fake  # noqa: F401  (registers the test-fake reader)

HERE = Path(__file__).parent
OPTS = {"landmarks": "shipped", "size": 64, "chunk_frames": 3}
SHARDED = {**OPTS, "shards": True, "shard_sessions": 2}      # 6 sessions: 3 shards
COLUMNS = ("labels", "landmarks", "matrix", "face", "landmark_origin", "frame", "subject", "session", "split",
           "sessions", "anomalies", "column_sha256")
KILLS = 4


@pytest.fixture(scope="module")
def plain(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain") / "plain.h5"
    prepare("test-fake", raw, out, **OPTS)
    return out


def leftovers(out: Path) -> list[str]:
    """Hidden files or folders a run left beside the store."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith("."))


def test_the_copied_form_has_a_plain_runs_bytes(raw, plain, tmp_path):
    out = tmp_path / "copy.h5"
    report = prepare("test-fake", raw, out, workers=2, **SHARDED)
    assert (report.frames, report.written_frames, report.sessions) == (24, 24, 6)
    assert report.faces == 22 and {a.kind for a in report.anomalies.items} == {"no_face", "unreadable"}
    assert filecmp.cmp(out, plain, shallow=False)
    assert not shards_path(out).exists() and not leftovers(out)


def test_the_virtual_form_reads_like_the_plain_store(raw, plain, tmp_path):
    out = tmp_path / "virt.h5"
    prepare("test-fake", raw, out, **SHARDED, virtual=True)
    with h5py.File(out, "r") as f:
        assert all(f[c].is_virtual for c in ("images", "labels", "landmarks", "subject", "split"))
        assert len(f["shards"]) == 3
    same_contents(out, plain, COLUMNS)
    assert verify(out).ok and store_identity(out) == store_identity(plain)
    check_store(out)
    with open_store(out) as v, open_store(plain) as p:
        assert [x.name for x in v.shard_files] == [f"shard-0000{i}.h5" for i in range(3)] and not p.shard_files
        assert all((v.image(i) == p.image(i)).all() for i in range(len(p)))
    for split in ("train", "test"):
        dv, dp = AUStoreDataset(out, split=split), AUStoreDataset(plain, split=split)
        assert len(dv) == len(dp)
        for i in range(len(dp)):
            (iv, lv, rv), (ip, lp, rp) = dv[i], dp[i]
            assert torch.equal(iv, ip) and torch.equal(lv, lp) and rv == rp
    moved = tmp_path / "elsewhere"     # the shard files are named relative to the store
    moved.mkdir()
    shutil.move(out, moved / out.name)
    shutil.move(shards_path(out), shards_path(moved / out.name))
    same_contents(moved / out.name, plain, COLUMNS)


def test_a_missing_shard_is_named_and_resume_computes_only_it(raw, plain, tmp_path):
    out = tmp_path / "virt.h5"
    prepare("test-fake", raw, out, **SHARDED, virtual=True)
    lost = shards_path(out) / "shard-00001.h5"
    lost.unlink()    # HDF5 alone would read its rows as zeros
    with pytest.raises(StoreError, match=r"shard .*shard-00001\.h5 is missing.*--resume"):
        open_store(out)
    report = verify(out)
    assert not report.ok and "shard-00001.h5 is missing" in report.problems[0]
    res = CliRunner().invoke(cli, ["verify", str(out)])
    assert res.exit_code == 1 and "shard-00001.h5ismissing" in "".join(res.output.split())   # wrapped at 80
    again = prepare("test-fake", raw, out, **SHARDED, virtual=True, resume=True)
    assert again.written_frames == 8 and again.resumed_sessions == 4    # S2's two sessions only
    same_contents(out, plain, COLUMNS)
    assert verify(out).ok


def test_a_replaced_shard_is_refused(raw, tmp_path):
    out = tmp_path / "virt.h5"
    prepare("test-fake", raw, out, **SHARDED, virtual=True)
    a, b = shards_path(out) / "shard-00000.h5", shards_path(out) / "shard-00002.h5"
    shutil.copyfile(b, a)
    with pytest.raises(StoreError, match=r"shard-00000\.h5 is unfinished or is not the shard"):
        open_store(out)


def test_resume_keeps_finished_stores_and_refuses_to_overwrite(raw, plain, tmp_path):
    out = tmp_path / "copy.h5"
    prepare("test-fake", raw, out, **SHARDED)
    with pytest.raises(StoreExistsError, match="--force"):
        prepare("test-fake", raw, out, **SHARDED)
    assert prepare("test-fake", raw, out, **SHARDED, resume=True).already_complete
    shards_path(out).mkdir()       # a copied store killed before its shard folder was removed
    again = prepare("test-fake", raw, out, **SHARDED, resume=True)
    assert not again.already_complete and not shards_path(out).exists()
    assert filecmp.cmp(out, plain, shallow=False)
    other = tmp_path / "other.h5"
    shards_path(other).mkdir()
    with pytest.raises(StoreExistsError, match="interrupted run; rerun with --resume"):
        prepare("test-fake", raw, other, **SHARDED)


def test_cli_shards_and_virtual(raw, plain, tmp_path):
    common = ["prepare", "test-fake", str(raw), "--landmarks", "shipped", "--size", "64"]
    res = CliRunner().invoke(cli, [*common, str(tmp_path / "v.h5"), "--virtual"])
    assert res.exit_code == 2 and "give --shards too" in res.output
    res = CliRunner().invoke(cli, [*common, str(tmp_path / "v.h5"), "--shards", "--virtual", "--shard-sessions",
                                   "4"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in shards_path(tmp_path / "v.h5").glob("*.h5")) == ["shard-00000.h5",
                                                                                   "shard-00001.h5"]
    assert verify(tmp_path / "v.h5").ok
    with open_store(tmp_path / "v.h5") as v, open_store(plain) as p:
        assert v.identity == p.identity      # the CLI's chunk size differs: same contents


def _die_in_shard_0(fn, job):
    """Runs in a pool worker: shard 0's worker dies at its second chunk, a partial folder behind.
    (A broken pool fails every task in flight; the error names the first in write order.)"""
    if job.index == 0:
        import austack.prepare.shards as ps

        real, calls = ps.process_chunk, []

        def dying(chunk):
            calls.append(1)
            if len(calls) == 2:
                os._exit(1)
            return real(chunk)

        ps.process_chunk = dying
    return fn(job)


class DyingPool(ProcessPoolExecutor):
    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_die_in_shard_0, fn, *args)


def test_a_worker_dying_mid_shard_names_its_sessions_and_resume_completes(raw, plain, tmp_path):
    out = tmp_path / "dies.h5"
    with DyingPool(2) as pool:
        with pytest.raises(WorkerLostError, match=r"shard 0 \(sessions S1/T1, S1/T2\) failed on the executor.*"
                                                  r"--resume"):
            prepare("test-fake", raw, out, executor=pool, window=4, **SHARDED)
    assert not out.exists() and (shards_path(out) / "shard-00000.h5.partial").is_dir()
    assert not (shards_path(out) / "shard-00000.h5").exists()
    report = prepare("test-fake", raw, out, workers=2, resume=True, **SHARDED)
    assert report.written_frames < 24 and report.frames == 24
    assert filecmp.cmp(out, plain, shallow=False)


RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import _prepare_fake
    from austack.prepare import prepare

    print("go", flush=True)
    prepare("test-fake", {raw!r}, {out!r}, workers=2, **{opts!r})
    print("done", flush=True)
""")


def _start(raw, out, opts) -> subprocess.Popen:
    code = RUN.format(tests=str(HERE), raw=str(raw), out=str(out), opts=opts)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.mark.parametrize("virtual", [False, True])
def test_sigkill_at_random_instants_then_resume(raw, plain, tmp_path, virtual):
    """Kills land anywhere: labels, a shard mid-write, the copy or the virtual file, the tidy-up."""
    opts = {**SHARDED, "virtual": virtual}
    proc = _start(raw, tmp_path / "timing.h5", opts)
    wait_for(proc, "go")
    t0 = time.perf_counter()
    wait_for(proc, "done")
    span = time.perf_counter() - t0
    proc.wait()
    for k, delay in enumerate(np.random.default_rng(77 + virtual).uniform(0, 1.1 * span, KILLS)):
        out = tmp_path / f"k{k}.h5"
        proc = _start(raw, out, opts)
        wait_for(proc, "go")
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)     # the run and its workers, as a crash would
        proc.wait()
        prepare("test-fake", raw, out, resume=True, **opts)
        if virtual:
            same_contents(out, plain, COLUMNS)
            assert verify(out).ok
        else:
            assert filecmp.cmp(out, plain, shallow=False), f"kill {k} after {delay:.3f} s of {span:.3f} s"
            assert not shards_path(out).exists()
        assert not [n for n in leftovers(out) if n.startswith(f".{out.name}")], leftovers(out)


def test_a_local_dask_cluster_writes_the_shards(raw, plain, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "dask.h5"
    prepare("test-fake", raw, out, dask="local:2", **SHARDED)
    assert filecmp.cmp(out, plain, shallow=False)
