"""`prepare` on a tiny fake dataset: landmarks paths, anomalies, determinism, kill and resume."""
from __future__ import annotations

import filecmp
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from austack.errors import StoreError, StoreExistsError
from austack.prepare.executors import InlineExecutor, ordered_map
from austack.prepare import prepare
from austack.store import open_store, partial_path, verify

import _prepare_fake
from _prepare_fake import write_fake_raw

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake_raw")
    return root, write_fake_raw(root, subjects=("S1", "S2", "S3", "S4"))


def columns(path) -> dict:
    with h5py.File(path, "r") as f:
        out = {k: f[k][:] for k in ("labels", "frame", "face", "landmark_origin", "landmarks", "matrix", "sessions")}
        out["images"] = [bytes(r) for r in f["images"][:]]
        out["subject"] = f["subject"].asstr()[:].tolist()
    return out


def assert_same(a: dict, b: dict) -> None:
    for k in a:
        if isinstance(a[k], np.ndarray) and a[k].dtype.kind == "f":
            np.testing.assert_array_equal(a[k], b[k])   # NaN == NaN here
        else:
            assert np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k], k


@pytest.fixture(scope="module")
def clean(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "clean.h5"
    report = prepare("test-fake", raw[0], out, landmarks="shipped")
    return out, report


def test_store_matches_the_raw_data(raw, clean):
    root, truth = raw
    out, report = clean
    with open_store(out) as s:
        for subject, session in truth:
            rows = np.flatnonzero((s.subjects == subject) & (s.session_ids == session))
            assert s.frames[rows].tolist() == truth[(subject, session)]["frames"]
            np.testing.assert_array_equal(s.labels[rows], truth[(subject, session)]["labels"])
        assert len(s) == sum(len(t["frames"]) for t in truth.values()) == report.frames == 24
    # one blank frame (no landmarks) and one truncated JPEG: both kept with face=0 and reported
    assert report.faces == 22 and report.no_face == 2
    kinds = {a.kind: a for a in report.anomalies}
    assert kinds["no_face"].path.endswith(os.path.join("frames", "S1", "T2")) and "frames 11" in kinds["no_face"].detail
    assert kinds["unreadable"].path.endswith(os.path.join("S4", "T1", "12.jpg"))
    assert verify(out).ok


def test_aligned_landmarks_sit_where_the_spec_puts_them(clean):
    with open_store(clean[0]) as s:
        lm = s.landmarks[s.face == 1]
    anchors = np.stack([lm[:, 19:25].mean(1), lm[:, 25:31].mean(1), lm[:, 13], lm[:, 31], lm[:, 37]], 1)
    centre = (anchors.min(1) + anchors.max(1)) / 2
    np.testing.assert_allclose(centre, 127.5, atol=1e-3)


def test_dlib_path_finds_the_same_faces(raw, clean, tmp_path):
    report = prepare("test-fake", raw[0], tmp_path / "dlib.h5", landmarks="dlib")
    assert report.origins == {"dlib": 22, "none": 2}
    with open_store(tmp_path / "dlib.h5") as d, open_store(clean[0]) as s:
        face = s.face == 1
        np.testing.assert_array_equal(d.face, s.face)
        # dlib on the moved photo vs the moved dlib points, in aligned pixels (about 2x the raw
        # ones here): the same fit to about a raw pixel
        err = np.abs(d.landmarks[face] - s.landmarks[face]).mean()
        assert err < 3.0, err


def test_workers_and_encodings_write_the_same_store(raw, clean, tmp_path):
    prepare("test-fake", raw[0], tmp_path / "w2.h5", landmarks="shipped", workers=2)
    assert_same(columns(clean[0]), columns(tmp_path / "w2.h5"))
    assert filecmp.cmp(clean[0], tmp_path / "w2.h5", shallow=False)   # the very bytes
    prepare("test-fake", raw[0], tmp_path / "raw.h5", landmarks="shipped", encoding="raw")
    with open_store(tmp_path / "raw.h5") as r, open_store(clean[0]) as j:
        assert r.attrs["image_encoding"] == "raw"
        diff = np.abs(r.image(3).astype(int) - j.image(3).astype(int)).mean()
        assert diff < 3, diff    # JPEG q95 vs the exact pixels


def test_existing_output_needs_force(raw, clean):
    with pytest.raises(StoreExistsError, match="--force"):
        prepare("test-fake", raw[0], clean[0], landmarks="shipped")
    again = prepare("test-fake", raw[0], clean[0], landmarks="shipped", resume=True)
    assert again.already_complete and again.frames == 24


def test_ctrl_c_leaves_a_resumable_partial(raw, clean, tmp_path):
    out = tmp_path / "int.h5"
    calls = []

    def interrupt(done, total, subject):
        calls.append(done)
        if done >= 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare("test-fake", raw[0], out, landmarks="shipped", progress=interrupt)
    assert partial_path(out).exists() and not out.exists()
    with pytest.raises(StoreError, match="--resume"):
        open_store(out)
    report = prepare("test-fake", raw[0], out, landmarks="shipped", resume=True)
    assert report.resumed_sessions == 3 and report.written_frames == 15
    assert_same(columns(clean[0]), columns(out))
    assert filecmp.cmp(clean[0], out, shallow=False)


KILLED_RUN = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import _prepare_fake
    from austack.prepare import prepare

    def slow(done, total, subject):
        print(done, flush=True)
        time.sleep(0.3)

    prepare("test-fake", {raw!r}, {out!r}, landmarks="shipped", workers=2, progress=slow)
""")


def test_sigkill_then_resume_equals_a_clean_run(raw, clean, tmp_path):
    out = tmp_path / "killed.h5"
    code = KILLED_RUN.format(tests=str(HERE), raw=str(raw[0]), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        for line in proc.stdout:
            if int(line) >= 9:       # three sessions of three frames are written
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, as a crash would
        proc.wait()
    assert partial_path(out).exists() and not out.exists()
    report = prepare("test-fake", raw[0], out, landmarks="shipped", resume=True)
    assert report.resumed_sessions >= 3
    assert_same(columns(clean[0]), columns(out))
    assert verify(out).ok


def test_ordered_map_keeps_order_and_a_bounded_window():
    live, most, lock = [0], [0], threading.Lock()

    def job(x):
        with lock:
            live[0] += 1
            most[0] = max(most[0], live[0])
        time.sleep(0.002 * (x % 3))
        with lock:
            live[0] -= 1
        return x * x

    submitted = []

    def items():
        for i in range(40):
            submitted.append(i)
            yield i, (None if i % 7 == 0 else i)

    with ThreadPoolExecutor(4) as pool:
        seen = 0
        for tag, result in ordered_map(pool, job, items(), window=3):
            assert tag == seen and result == (None if tag % 7 == 0 else tag * tag)
            assert len(submitted) - seen <= 4      # window submitted + the one drawn and waiting
            seen += 1
    assert seen == 40 and most[0] <= 3


def test_ordered_map_keeps_at_most_running_unfinished_and_yields_in_order():
    """A long job at the head: the window lets later jobs finish past it, but never more than
    `running` are unfinished at once (so a cluster hands each to a free worker)."""
    lock, live, most = threading.Lock(), [0], [0]

    def job(x):
        with lock:
            live[0] += 1
            most[0] = max(most[0], live[0])
        time.sleep(0.2 if x % 5 == 0 else 0.01)
        with lock:
            live[0] -= 1
        return -x

    with ThreadPoolExecutor(8) as pool:
        out = list(ordered_map(pool, job, ((i, i) for i in range(20)), window=6, running=2))
    assert out == [(i, -i) for i in range(20)]
    assert most[0] == 2


def test_ordered_map_cancels_what_did_not_start_when_stopped():
    with ThreadPoolExecutor(1) as pool:
        started = []
        gen = ordered_map(pool, lambda x: started.append(x) or time.sleep(0.05), ((i, i) for i in range(10)), 5)
        next(gen)
        gen.close()
    assert len(started) < 10
    assert [r for _, r in ordered_map(InlineExecutor(), str, [(0, 1), (1, None)], 1)] == ["1", None]


def test_a_session_with_no_frames_is_kept_as_an_empty_row_range(tmp_path):
    root = tmp_path / "raw"
    write_fake_raw(root, subjects=("S1", "S2"), sessions=("T1",), frames=2, no_face=False, truncated=False)
    (root / "labels" / "S3_T1.csv").write_text("")          # a session the reader could not fill
    np.save(root / "labels" / "S3_T1.npy", np.zeros((0, 68, 2), np.float32))
    report = prepare("test-fake", root, tmp_path / "e.h5", landmarks="shipped", size=32)
    assert report.sessions == 3 and report.frames == 4
    with open_store(tmp_path / "e.h5") as s:
        last = s.sessions[-1]
        assert last["start"] == last["stop"] == 4
    assert verify(tmp_path / "e.h5").ok
    again = prepare("test-fake", root, tmp_path / "e.h5", landmarks="shipped", size=32, force=True)
    assert again.frames == 4


FORK_AFTER_OPENCV_THREADS = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import cv2, numpy as np
    import _prepare_fake
    from austack.prepare import prepare

    cv2.setNumThreads(2)
    cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (3000, 3000))   # starts OpenCV's thread pool
    prepare("test-fake", {raw!r}, {out!r}, workers=2, landmarks="shipped", size=64, chunk_frames=2)
    assert cv2.getNumThreads() == 2, "prepare must give OpenCV its threads back"
    print("done")
""")


PREPARE_IN_A_FORKED_CHILD = textwrap.dedent("""
    import multiprocessing, sys
    sys.path.insert(0, {tests!r})
    import cv2, numpy as np
    import _prepare_fake
    from austack.prepare import prepare

    def child():
        prepare("test-fake", {raw!r}, {out!r}, landmarks="shipped", size=64)

    cv2.setNumThreads(2)
    cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (3000, 3000))   # starts OpenCV's thread pool
    p = multiprocessing.get_context("fork").Process(target=child)
    p.start()
    p.join(50)
    if p.is_alive():
        p.kill()   # hung: do not leave it behind
    assert p.exitcode == 0, p.exitcode
    print("done")
""")


def test_prepare_in_a_process_forked_after_opencv_threads_does_not_hang(fake_raw, tmp_path):
    """A user's own forked process running prepare: it leaves OpenCV's threads alone."""
    code = PREPARE_IN_A_FORKED_CHILD.format(tests=str(Path(__file__).parent), raw=str(fake_raw),
                                            out=str(tmp_path / "out.h5"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr[-2000:]


def test_a_pool_forked_from_a_process_with_opencv_threads_does_not_hang(fake_raw, tmp_path):
    """A forked worker must not reconfigure OpenCV's thread pool: the pool's state came from
    the parent's threads, and pthread_cond_destroy waits for them forever (found by the demo,
    whose synth step starts that pool)."""
    code = FORK_AFTER_OPENCV_THREADS.format(tests=str(Path(__file__).parent), raw=str(fake_raw),
                                            out=str(tmp_path / "out.h5"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr[-2000:]
