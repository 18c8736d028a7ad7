"""BP4D+: write the raw layout (zipped subjects) with its writer, read it back, compare with Truth."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from austack.datasets import create_reader, list_readers
from austack.datasets.base import AnomalyReport, SessionRef
from austack.datasets.bp4d import read_occ_csv
from austack.datasets.bp4dplus import BP4DPlusReader
from austack.errors import DatasetNotFoundError
from austack.protocols import load_protocol
from austack.synth.layouts import base as layouts
from austack.synth.layouts.bp4dplus import CODED_TASKS, CSV_AUS

from fake_sessions import make_session, relative_anomalies

N_SUBJECTS, N_TASKS, N_FRAMES = 3, 2, 5
AUS = load_protocol("bp4d+").aus


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("bp4dplus")
    writer = layouts.LAYOUTS.get("bp4d+")()
    rng = np.random.default_rng(3)
    sessions = [make_session(subject, task, N_FRAMES, seed=i)
                for i, (subject, task) in enumerate((s, t) for s in writer.subject_ids(N_SUBJECTS, rng)
                                                    for t in writer.session_ids(s, N_TASKS))]
    return root, writer.write(root, sessions, np.random.default_rng(11))


@pytest.fixture(scope="module")
def read(written):
    return BP4DPlusReader(written[0]).read_all()


@pytest.fixture
def copy(written, tmp_path):
    root, truth = written
    shutil.copytree(root, tmp_path / "bp4dplus")
    return tmp_path / "bp4dplus", truth


def by_session(truth):
    return {(t.subject, t.session): t for t in truth.sessions}


def test_registered(written):
    assert "bp4d+" in list_readers("bp4d*") and "bp4d+" in layouts.LAYOUTS
    reader = create_reader("bp4d+", written[0])
    assert isinstance(reader, BP4DPlusReader) and reader.frame_offset == -1
    assert reader.label_protocol.id == "bp4d+-3fold@v1"


def test_sessions(written):
    root, truth = written
    refs = BP4DPlusReader(root).sessions()
    assert len(refs) == N_SUBJECTS * N_TASKS and all(isinstance(r, SessionRef) for r in refs)
    assert [(r.subject, r.session) for r in refs] == sorted(by_session(truth), key=lambda k: (k[0], int(k[1][1:])))
    assert {r.session for r in refs} <= set(CODED_TASKS)
    protocol = load_protocol("bp4d+")
    for fold in (1, 2, 3):
        assert protocol.subjects(fold, "test", {r.subject for r in refs})


def test_frames_and_labels_equal_truth(read, written):
    records, _ = read
    expected = by_session(written[1])
    assert len(records) == len(expected)
    for rec in records:
        t = expected[rec.subject, rec.session]
        assert [f.frame for f in rec.frames] == t.frames
        np.testing.assert_array_equal(np.stack([f.labels for f in rec.frames]), t.labels)
        assert rec.landmark_scheme is None and all(f.landmarks is None for f in rec.frames)


def test_zip_sources_point_at_jpg_f_minus_1(read, written):
    records, _ = read
    root = written[0].resolve()
    for rec in records:
        archive = root / "2D+3D" / f"{rec.subject}.zip"
        with zipfile.ZipFile(archive) as z:
            members = set(z.namelist())
        for f in rec.frames:
            assert f.source.kind == "zip" and f.source.path == str(archive)
            assert f.source.member in members
            assert f.source.member.startswith(f"{rec.subject}/{rec.session}/")
            assert int(Path(f.source.member).stem) == f.frame - 1


def test_mixed_padding_and_frame_one_is_jpg_zero(read, written):
    records, _ = read
    widths = {len(Path(f.source.member).stem) for r in records for f in r.frames}
    assert widths == {3, 4}
    first = [r.frames[0] for r in records if r.frames[0].frame == 1]
    assert first and Path(first[0].source.member).stem.strip("0") == ""


def test_anomalies_equal_truth(read, written):
    root, truth = written
    _, report = read
    assert relative_anomalies(report, root.resolve()) == sorted(truth.anomalies)
    assert [k for k, _ in truth.anomalies] == ["missing_image"]


def test_csv_has_34_named_au_columns_and_some_bom(written):
    csvs = sorted((written[0] / "AUCoding" / "AU_OCC").glob("*.csv"))
    for p in csvs:
        header = p.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
        assert len(header) == 1 + len(CSV_AUS) == 35
        assert read_occ_csv(p, AUS, AnomalyReport()).style == "named"
    assert any(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in csvs)


def test_extracted_subjects_read_the_same(copy):
    root, truth = copy
    frames_dir = root / "2D+3D"
    for archive in frames_dir.glob("*.zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(frames_dir)       # members <SUBJ>/<TASK>/<n>.jpg
        archive.unlink()
    records, report = BP4DPlusReader(root).read_all()
    expected = by_session(truth)
    for rec in records:
        assert [f.frame for f in rec.frames] == expected[rec.subject, rec.session].frames
        assert all(f.source.kind == "image" and Path(f.source.path).is_file() for f in rec.frames)
    # The missing member <SUBJ>/<TASK>/<n>.jpg is now a missing file 2D+3D/<SUBJ>/<TASK>/<n>.jpg.
    assert relative_anomalies(report, root.resolve()) == [
        (kind, "2D+3D/" + path.split(".zip:")[1]) for kind, path in truth.anomalies]


def test_corrupt_zip_is_reported_with_count(copy):
    root, truth = copy
    t = truth.sessions[-1]
    archive = root / "2D+3D" / f"{t.subject}.zip"
    archive.write_bytes(b"not a zip")
    records, report = BP4DPlusReader(root).read_all()
    rec = next(r for r in records if (r.subject, r.session) == (t.subject, t.session))
    assert rec.frames == []
    bad = [a for a in report if a.kind == "unreadable" and a.path == str(archive.resolve())]
    assert bad and all("not a readable zip archive" in a.detail for a in bad)
    # One anomaly per session of that subject, counting every labelled row it skipped.
    sessions = [s for s in truth.sessions if s.subject == t.subject]
    assert len(bad) == len(sessions) and sum(a.count for a in bad) == N_FRAMES * len(sessions)


def test_not_bp4dplus(tmp_path, written):
    with pytest.raises(DatasetNotFoundError, match="AUCoding/AU_OCC does not exist"):
        BP4DPlusReader(tmp_path)
    (tmp_path / "AUCoding" / "AU_OCC").mkdir(parents=True)
    (tmp_path / "AUCoding" / "AU_OCC" / "F001_T1.csv").write_text(",1\n")
    (tmp_path / "Sequences(2D+3D)").mkdir()          # a BP4D root is not a BP4D+ root
    with pytest.raises(DatasetNotFoundError, match=r"bp4d\+: .*2D\+3D does not exist\. Expected a raw bp4d\+ "
                                                   r"distribution .*2D\+3D/<SUBJ>\.zip"):
        BP4DPlusReader(tmp_path)
