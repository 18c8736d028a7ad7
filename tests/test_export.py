"""`austack export`: each format read back by a parser written from the format's description
(docs/export.md), not from austack's writer, and checked against the store frame by frame."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from austack.cli.main import cli
from austack.export import export
from austack.protocols import load_protocol
from austack.store import open_store
from export_fixtures import write_landmark_store

# PyTorch-JAANet's data/list/reflect_49.txt, as published
REFLECT_49 = ("10 9 8 7 6 5 4 3 2 1 11 12 13 14 19 18 17 16 15 29 28 27 26 31 30 23 22 21 20 25 24 38 37 36 35 "
              "34 33 32 43 42 41 40 39 46 45 44 49 48 47")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    return {"bp4d": write_landmark_store(d / "bp4d.h5"),
            "disfa": write_landmark_store(d / "disfa.h5", "disfa-3fold@v1", first_frame=1, encoding="raw")}


def _table(store):
    """(subject, session, frame) -> row, built from the store's columns."""
    return {(s, t, int(f)): i for i, (s, t, f) in enumerate(zip(store.subjects, store.session_ids, store.frames))}


def _parts(protocol, k):
    """Test and train subjects of fold k from the protocol's parts: fold k tests part 4-k."""
    test = set(protocol.parts[f"part{4 - k}"])
    train = {s for p, members in protocol.parts.items() if p != f"part{4 - k}" for s in members}
    return train, test


def _row_of_path(table, dataset, rel):
    parts = rel.split("/")
    if dataset == "disfa":                      # SN002/0.png: 0-based video frame = label frame - 1
        subject, number = parts
        return table[(subject, "T1", int(number.split(".")[0]) + 1)]
    subject, session, number = parts            # F001/T1/2440.jpg: the AU_OCC frame number
    assert not number.startswith("0")
    return table[(subject, session, int(number.split(".")[0]))]


def _image(path):
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("name", ["bp4d", "disfa"])
def test_megraphau_lists_read_back(stores, tmp_path, name):
    out = export(stores[name], "megraphau", tmp_path / "m", progress=False).out
    ds = {"bp4d": "BP4D", "disfa": "DISFA"}[name]
    with open_store(stores[name]) as s:
        table, proto = _table(s), load_protocol(s.settings.protocol)
        for k in (1, 2, 3):
            train_subjects, test_subjects = _parts(proto, k)
            for split, allowed in (("train", train_subjects), ("test", test_subjects)):
                paths = (out / "list" / f"{ds}_{split}_img_path_fold{k}.txt").read_text().splitlines()
                labels = np.loadtxt(out / "list" / f"{ds}_{split}_label_fold{k}.txt", dtype=np.int64, ndmin=2)
                rows = [_row_of_path(table, name, p) for p in paths]
                assert {s.subjects[i] for i in rows} <= allowed
                expected_rows = [i for i in range(len(s)) if s.subjects[i] in allowed]
                assert sorted(rows) == expected_rows           # every frame of the split, once
                want = np.where(s.labels[rows] < 0, 9, s.labels[rows])   # unknown stays 9
                assert np.array_equal(labels, want)
                for p, i in zip(paths[:3], rows[:3]):
                    img = _image(out / "img" / p)
                    assert np.abs(img.astype(int) - s.image(i).astype(int)).mean() < (0.01 if name == "disfa" else 1)
            y = np.loadtxt(out / "list" / f"{ds}_train_label_fold{k}.txt", dtype=np.int64, ndmin=2)
            rel = np.loadtxt(out / "list" / f"{ds}_train_AU_relation_fold{k}.txt", dtype=np.int64, ndmin=2)
            n = y.shape[1]
            assert rel.shape == (len(y), n * n)
            assert all(rel[f, j * n + m] == 2 * y[f, j] + y[f, m] for f in range(len(y)) for j in range(n)
                       for m in range(n))
            known = y != 9
            r = ((y == 1) & known).sum(0) / known.sum(0)
            w = (1 / r) / (1 / r).sum() * n
            for prefix in ("", "train_", "test_"):
                line = (out / "list" / f"{ds}_{prefix}weight_fold{k}.txt").read_text().strip()
                assert "\t" in line and np.allclose([float(x) for x in line.split("\t")], w, atol=1e-5)
    for alias, target in (("img_256x256", "img"), ("list_256x256", "list")):
        assert (out / alias).resolve() == (out / target).resolve()
    side = json.loads((out / "austack-export.json").read_text())
    assert side["protocol"]["hash"] == proto.hash and side["store"]["identity"] == open_store(stores[name]).identity
    assert "validation" in side["train_rule"] and side["camera"] and side["crop"]["size"] == 40


def test_jaanet_lists_read_back(stores, tmp_path):
    out = export(stores["bp4d"], "jaanet", tmp_path / "j", progress=False).out
    lists = out / "list"
    assert (lists / "reflect_49.txt").read_text().split() == REFLECT_49.split()
    with open_store(stores["bp4d"]) as s:
        table, proto = _table(s), load_protocol(s.settings.protocol)
        for stem, parts in (("BP4D_combine_1_2", ("part1", "part2")), ("BP4D_part3", ("part3",)),
                            ("BP4D_combine_1_3", ("part1", "part3")), ("BP4D_part1", ("part1",))):
            members = {u for p in parts for u in proto.parts[p]}
            paths = (lists / f"{stem}_path.txt").read_text().splitlines()
            land = np.loadtxt(lists / f"{stem}_land.txt", delimiter="\t", ndmin=2)
            bio = np.loadtxt(lists / f"{stem}_biocular.txt", ndmin=1)
            occ = np.loadtxt(lists / f"{stem}_AUoccur.txt", dtype=np.int64, ndmin=2)
            rows = [_row_of_path(table, "bp4d", str(Path(p).relative_to(out / "imgs"))) for p in paths]
            with_face = [i for i in range(len(s)) if s.subjects[i] in members and s.face[i]]
            assert sorted(rows) == with_face                  # frames without landmarks dropped
            assert land.shape == (len(rows), 98) and occ.shape == (len(rows), 12)
            assert np.array_equal(occ, (s.labels[rows] == 1).astype(int))
            pts = land.reshape(-1, 49, 2)
            eyes = pts[:, 19:25].mean(1) - pts[:, 25:31].mean(1)
            assert np.allclose(bio, (eyes ** 2).sum(1), atol=1e-4)
            for p in pts:   # the alignment spec: box centre at (S-1)/2, larger side (S-1)/2.9
                d = p[25:31].mean(0) - p[19:25].mean(0)
                assert abs(d[1]) < 1e-3
                q = np.stack([p[19:25].mean(0), p[25:31].mean(0), p[13], p[31], p[37]])
                lo, hi = q.min(0), q.max(0)
                assert np.allclose((lo + hi) / 2, 99.5, atol=1e-3)
                assert np.isclose((hi - lo).max(), 199 / 2.9, atol=1e-3)
            assert _image(paths[0]).shape == (200, 200, 3)
        side = json.loads((out / "austack-export.json").read_text())
        assert side["dropped_no_landmarks"]["total"] == int((s.face == 0).sum())
        w = np.loadtxt(lists / "BP4D_combine_1_2_weight.txt", delimiter="\t")
        assert w.shape == (12,) and np.isclose(w.sum(), 12)


def test_fmae_json_lines_read_back(stores, tmp_path):
    out = export(stores["bp4d"], "fmae", tmp_path / "f", progress=False).out
    with open_store(stores["bp4d"]) as s:
        table, proto = _table(s), load_protocol(s.settings.protocol)
        for k in (1, 2, 3):
            train_subjects, test_subjects = _parts(proto, k)
            for split, allowed in (("train", train_subjects), ("test", test_subjects)):
                entries = [json.loads(line) for line in (out / f"BP4D_{split}_fold{k}.json").read_text().splitlines()]
                rows = []
                for e in entries:
                    assert not e["img_path"].startswith("/")               # FMAE: root_path + img_path
                    p = Path(str(out / "img") + "/" + e["img_path"])
                    assert p.is_file() and e["img_path"].split("/")[0] in allowed   # subject, as FMAE parses it
                    i = table[(p.parts[-3], p.parts[-2], int(p.stem))]
                    want = [a if v == 1 else 999 for a, v in zip(proto.aus, s.labels[i])]
                    assert e["AUs"] == want
                    rows.append(i)
                assert sorted(rows) == [i for i in range(len(s)) if s.subjects[i] in allowed]


def test_csv_lists_read_back(stores, tmp_path):
    import csv

    out = export(stores["disfa"], "csv", tmp_path / "c", progress=False).out
    with open_store(stores["disfa"]) as s:
        table, proto = _table(s), load_protocol(s.settings.protocol)
        for k in (1, 2, 3):
            train_subjects, test_subjects = _parts(proto, k)
            for split, allowed in (("train", train_subjects), ("test", test_subjects)):
                with (out / f"fold{k}" / f"{split}.csv").open(newline="") as f:
                    rows = list(csv.reader(f))
                assert rows[0] == ["image_path"] + [f"au{a}" for a in proto.aus]
                got = []
                for r in rows[1:]:
                    p = Path(r[0])
                    i = table[(p.parent.name, "T1", int(p.stem) + 1)]
                    assert s.subjects[i] in allowed and [int(v) for v in r[1:]] == s.labels[i].tolist()
                    got.append(i)
                assert sorted(got) == [i for i in range(len(s)) if s.subjects[i] in allowed]


def test_cli_export_json_and_refusals(stores, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["export", str(stores["bp4d"]), "--format", "fmae", "--out", str(tmp_path / "x"),
                            "--fold", "2", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert [f["fold"] for f in doc["folds"]] == [2] and doc["format"] == "fmae"
    r = runner.invoke(cli, ["export", str(stores["bp4d"]), "--format", "fmae", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--force" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["export", str(stores["bp4d"]), "--format", "csv", "--out", str(tmp_path / "y"),
                            "--fold", "7"])
    assert r.exit_code != 0 and "no fold 7" in r.output
