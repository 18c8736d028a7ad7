"""`austack score`: other tools' per-frame CSVs matched to stored frames and scored with
austack's own metric; what cannot be matched is counted, never scored as a negative."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from austack.cli.main import cli
from austack.results.leaderboard import leaderboards_from_db
from austack.scoring import score
from austack.store import open_store

BOOT = 200


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _austack_csv(store, path: Path, value, skip=()) -> Path:
    """austack predict's columns; `value(i)` gives row i's 0/1 per AU."""
    names = [f"AU{a:02d}" for a in store.aus]
    header = ["input", "frame", "time_s", "face", "face_x", "face_y", "face_w", "face_h", *names,
              *(f"{n}_c" for n in names)]
    rows = []
    for i in range(len(store)):
        if i in skip:
            continue
        calls = value(i)
        rows.append([f"Sequences(2D+3D)/{store.subjects[i]}/{store.session_ids[i]}/{store.frames[i]:04d}.jpg", 0,
                     "", 1, 0, 0, 10, 10, *calls, *calls])
    return _write(path, header, rows)


def _test_rates(store, fold):
    rows = store.get_subset(fold=fold, split="test")
    y = store.labels[rows]
    return ((y == 1).sum(0) / (y >= 0).sum(0))


def test_own_labels_score_f1_100(tiny_store, tmp_path):
    with open_store(tiny_store) as s:
        path = _austack_csv(s, tmp_path / "labels.csv", lambda i: [int(v == 1) for v in s.labels[i]])
        positives = [_test_rates(s, k) > 0 for k in (1, 2, 3)]
    doc = score(tiny_store, [path], n_boot=BOOT).to_dict()
    assert doc["tool"] == "austack" and doc["rows"]["matched"] == doc["rows"]["total"] == 144
    for f, pos in zip(doc["folds"], positives):
        assert f["missing_frames"] == 0 and f["scored_frames"] == f["test_frames"]
        assert np.allclose(np.asarray(f["f1"])[pos], 1.0)
        assert f["interval"]["mean_f1"]["low"] <= f["f1_mean"] <= f["interval"]["mean_f1"]["high"]


def test_all_ones_gives_always_active_f1(tiny_store, tmp_path):
    with open_store(tiny_store) as s:
        # py-feat style: probabilities, input path, 0-based frame
        header = ["FaceRectX", "FaceScore", *(f"AU{a:02d}" for a in s.aus), "input", "frame"]
        rows = [[1, 0.99, *([0.93] * len(s.aus)), f"/data/{s.subjects[i]}/{s.session_ids[i]}/{s.frames[i]}.jpg", 0]
                for i in range(len(s))]
        path = _write(tmp_path / "pyfeat.csv", header, rows)
        rates = [_test_rates(s, k) for k in (1, 2, 3)]
    doc = score(tiny_store, [path], n_boot=BOOT).to_dict()
    assert doc["tool"] == "py-feat"
    for f, r in zip(doc["folds"], rates):
        assert np.allclose(f["f1"], 2 * r / (1 + r))


def test_openface_per_sequence_matched_by_frame_index(tiny_store, tmp_path):
    raw = tmp_path / "raw"
    with open_store(tiny_store) as s:
        names = [f"AU{a:02d}_c" for a in s.aus] + ["AU45_c"]
        sequences = sorted(set(zip(s.subjects.tolist(), s.session_ids.tolist())))
        out = tmp_path / "openface"
        out.mkdir()
        expected_missing = {1: 0, 2: 0, 3: 0}
        for subject, session in sequences:
            rows = np.flatnonzero((s.subjects == subject) & (s.session_ids == session))
            folder = raw / "Sequences(2D+3D)" / subject / session
            folder.mkdir(parents=True)
            for i in rows:           # the raw folder: 4-digit names, numeric order = frame order
                (folder / f"{int(s.frames[i]):04d}.jpg").touch()
            lines = []
            for n, i in enumerate(rows):
                if n == 3:           # a frame the CSV lacks
                    continue
                success = 0 if n == 5 else 1
                lines.append([n + 1, 0, n / 30, 0.98, success, *[int(v == 1) for v in s.labels[i]], 0])
            lines.append([len(rows) + 1, 0, 0, 0.9, 1, *([1] * (len(s.aus) + 1))])   # past the folder: unmatched
            # OpenFace writes ", " between cells
            text = ", ".join(["frame", "face_id", "timestamp", "confidence", "success", *names]) + "\n"
            text += "".join(", ".join(map(str, r)) + "\n" for r in lines)
            (out / f"{subject}_{session}.csv").write_text(text)
        for k in (1, 2, 3):
            test = set(s.subjects[s.get_subset(fold=k, split="test")].tolist())
            expected_missing[k] = sum(1 for sub, _ in sequences if sub in test)
    doc = score(tiny_store, sorted(out.glob("*.csv")), raw_root=raw, n_boot=BOOT).to_dict()
    assert doc["tool"] == "openface2" and doc["rows"]["unmatched"] == len(sequences)
    assert doc["rows"]["no_face"] == len(sequences)
    assert any("past" in why for why in doc["unmatched_reasons"])
    for f in doc["folds"]:
        n_seq = expected_missing[f["fold"]]
        assert f["missing_frames"] == n_seq and f["no_face_frames"] == n_seq
        assert f["scored_frames"] == f["test_frames"] - 2 * n_seq
        with open_store(tiny_store) as s:
            pos = _test_rates(s, f["fold"]) > 0
        assert np.allclose(np.asarray(f["f1"])[pos], 1.0)   # matched to the right frames
    assert 45 not in doc["aus"]


def test_unmatched_and_missing_reported_never_negative(tiny_store, tmp_path):
    with open_store(tiny_store) as s:
        test1 = s.get_subset(fold=1, split="test")
        skip = set(test1[:4].tolist())
        path = _austack_csv(s, tmp_path / "p.csv", lambda i: [int(v == 1) for v in s.labels[i]], skip=skip)
        with path.open("a") as f:
            f.write("Sequences(2D+3D)/F999/T1/0001.jpg,0,,1,0,0,1,1," + ",".join(["1"] * 24) + "\n")
    doc = score(tiny_store, [path], folds=[1], n_boot=BOOT).to_dict()
    assert doc["rows"]["unmatched"] == 1 and doc["unmatched_examples"][0]["line"] == 144 - len(skip) + 2
    f = doc["folds"][0]
    assert f["missing_frames"] == 4 and f["scored_frames"] == len(test1) - 4
    neg = score(tiny_store, [path], folds=[1], missing="negative", n_boot=BOOT).to_dict()["folds"][0]
    assert neg["scored_frames"] == len(test1) and neg["f1_mean"] <= f["f1_mean"]


def test_cli_score_records_external_row(tiny_store, tmp_path):
    with open_store(tiny_store) as s:
        # LibreFace style: au_N columns, a frame column and the image path
        header = ["image_path", "frame_idx", *(f"au_{a}" for a in s.aus)]
        rows = [[f"{s.subjects[i]}/{s.session_ids[i]}/{s.frames[i]}.png", 0, *[int(v == 1) for v in s.labels[i]]]
                for i in range(len(s))]
        path = _write(tmp_path / "libreface.csv", header, rows)
    db = tmp_path / "results.db"
    runner = CliRunner()
    args = ["score", str(tiny_store), str(path), "--tool-version", "0.1.1", "--db", str(db), "--boot", "200"]
    r = runner.invoke(cli, [*args, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["tool"] == "libreface" and all(x["inserted"] for x in doc["db"]["rows"])
    r = runner.invoke(cli, args)                      # the same files again: no second row
    assert r.exit_code == 0, r.output
    boards = leaderboards_from_db(db, "bp4d", published=False, ci=True)
    (row,) = boards[0].rows
    assert "external" in row.method and "libreface 0.1.1" in row.method
    assert any("external" in flag for flag in row.flags) and row.runs == 3 and row.ci is not None
    r = runner.invoke(cli, ["score", str(tiny_store), str(path), "--fold", "x"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_disfa_video_rows_matched_by_video_frame(tmp_path):
    from export_fixtures import write_landmark_store

    store = write_landmark_store(tmp_path / "disfa.h5", "disfa-3fold@v1", first_frame=1, encoding="raw")
    with open_store(store) as s:
        header = ["FaceScore", *(f"AU{a:02d}" for a in s.aus), "input", "frame"]
        rows = []
        for i in range(len(s)):     # label frame f is video frame f - 1 (0-based)
            calls = [int(v == 1) for v in s.labels[i]]
            rows.append([0.9, *calls, f"/raw/Videos_LeftCamera/LeftVideo{s.subjects[i]}_comp.avi", s.frames[i] - 1])
            rows.append([0.9, *calls, f"/raw/Video_RightCamera/RightVideo{s.subjects[i]}_Comp.avi", s.frames[i] - 1])
        path = _write(tmp_path / "disfa.csv", header, rows)
    doc = score(store, [path], n_boot=BOOT).to_dict()
    assert doc["rows"]["matched"] == len(rows) // 2 and doc["rows"]["unmatched"] == len(rows) // 2
    assert all("right-camera" in why for why in doc["unmatched_reasons"])
    for f in doc["folds"]:
        assert f["missing_frames"] == 0 and np.allclose(f["f1"], 1.0)
