"""DISFA: write the raw layout with its irregularities, read it back, compare with the truth."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from austack.datasets import create_reader
from austack.datasets.base import AnomalyReport
from austack.errors import ConfigError, DatasetNotFoundError
from austack.protocols import load_protocol
from austack.synth.layouts.base import ALL_AUS, LAYOUTS
from austack.synth.layouts.disfa import POINTS_66, DisfaLayout, write_video
from fake_sessions import face_points, frames_of, make_session, relative_anomalies

N = 6  # frames per subject
SUBJECTS = ["SN003", "SN010", "SN013", "SN031"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("disfa")
    sessions = [make_session(s, "left", N, seed=i) for i, s in enumerate(SUBJECTS)]
    assert LAYOUTS.get("disfa") is DisfaLayout
    truth = DisfaLayout().write(root, sessions, np.random.default_rng(0))
    return root, sessions, truth


@pytest.fixture(scope="module")
def read(written):
    root, _, _ = written
    records, report = create_reader("disfa", root).read_all()
    return records, report


def test_sessions_frames_and_labels_match_truth(written, read):
    root, _, truth = written
    records, _ = read
    assert [(r.subject, r.session) for r in records] == [(t.subject, t.session) for t in truth.sessions]
    for t in truth.sessions:
        frames = frames_of(records, t.subject)
        assert [f.frame for f in frames] == t.frames
        assert np.array_equal(np.stack([f.labels for f in frames]), t.labels)
        assert np.array_equal(np.stack([f.intensities for f in frames]), t.intensities)
        assert all(f.labels.dtype == np.int8 and f.intensities.dtype == np.int8 for f in frames)
        assert [f.source.index for f in frames] == [f - 1 for f in t.frames]


def test_sn010_is_one_frame_shorter_and_extra_video_frames_are_ignored(read):
    records, _ = read
    lengths = {r.subject: len(r.frames) for r in records}
    assert lengths == {"SN003": N, "SN010": N - 1, "SN013": N, "SN031": N}


def test_occurrence_is_intensity_at_least_two(written, read):
    _, sessions, _ = written
    records, _ = read
    aus = load_protocol("disfa").aus
    raw = sessions[0].written[:, [ALL_AUS.index(a) for a in aus]]
    got = np.stack([f.labels for f in frames_of(records, "SN003")])
    assert np.array_equal(got, (raw >= 2).astype(np.int8))
    assert set(np.unique(raw)) > {0, 1, 2}          # the threshold is really exercised


def test_landmarks_are_66_points_zero_based(written, read):
    _, sessions, truth = written
    records, _ = read
    _, marks = next(iter(sessions[0].frames()))
    frame = frames_of(records, "SN003")[0]
    assert frame.landmarks.shape == (66, 2) and frame.landmarks.dtype == np.float32
    np.testing.assert_allclose(frame.landmarks, marks[POINTS_66], atol=1e-4)
    for t in truth.sessions:
        record = next(r for r in records if r.subject == t.subject)
        assert record.landmark_scheme == t.landmark_points == 66
        assert [f.frame for f in record.frames if f.landmarks is None] == t.landmarks_missing
    assert sum(len(t.landmarks_missing) for t in truth.sessions) == 1
    # SN031 uses l0NNNN_lm.mat names and still gets its landmarks
    assert all(f.landmarks is not None or f.frame in truth.sessions[3].landmarks_missing
               for f in frames_of(records, "SN031"))


def test_anomalies_equal_truth(written, read):
    root, _, truth = written
    _, report = read
    assert relative_anomalies(report, root) == sorted(truth.anomalies)


def test_irregular_names_were_written(written):
    root, _, _ = written
    names = {p.name for p in root.rglob("*") if p.is_file()}
    assert any(n.endswith("_AU1.txt") for n in names) and any(n.endswith("_au1.txt") for n in names)
    assert any(n.endswith("_Comp.avi") for n in names) and any(n.startswith("l0") for n in names)
    assert any(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in root.glob("ActionUnit_Labels/*/*.txt"))


def test_short_video_is_a_count_mismatch_and_frames_are_not_invented(written, tmp_path):
    root, sessions, _ = written
    copy = tmp_path / "disfa"
    shutil.copytree(root, copy)
    video = copy / "Videos_LeftCamera" / "LeftVideoSN003_comp.avi"
    rng = np.random.default_rng(1)
    write_video(video, ((rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), face_points(48, 64))
                        for _ in range(N - 2)))
    reader = create_reader("disfa", copy)
    report = AnomalyReport()
    record = reader.read_session(next(r for r in reader.sessions() if r.subject == "SN003"), report)
    assert len(record.frames) == N - 2
    [mismatch] = [a for a in report if a.kind == "count_mismatch"]
    assert mismatch.count == 2 and mismatch.path == str(video)


def test_au_files_of_different_length_are_reported(written, tmp_path):
    root, _, _ = written
    copy = tmp_path / "disfa"
    shutil.copytree(root, copy)
    [au2] = [p for p in (copy / "ActionUnit_Labels" / "SN013").iterdir() if p.name.lower().endswith("_au2.txt")]
    au2.write_text("".join(au2.read_text(encoding="utf-8-sig").splitlines(keepends=True)[:-1]))
    reader = create_reader("disfa", copy)
    report = AnomalyReport()
    record = reader.read_session(next(r for r in reader.sessions() if r.subject == "SN013"), report)
    assert len(record.frames) == N
    assert record.frames[-1].labels[1] == -1 and record.frames[-1].intensities[1] == -1
    assert [(a.kind, a.count) for a in report if a.kind != "missing_landmarks"] == [("count_mismatch", 1)]


def test_video_folder_alias_and_right_camera(written, tmp_path):
    root, _, _ = written
    copy = tmp_path / "disfa"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("Landmark_Points"))
    (copy / "Videos_LeftCamera").rename(copy / "Video_LeftCamera")
    records, _ = create_reader("disfa", copy).read_all()
    assert sum(len(r.frames) for r in records) == 4 * N - 1
    assert all(f.landmarks is None for r in records for f in r.frames)    # none shipped in this copy
    right = copy / "Video_RightCamera"
    right.mkdir()
    for video in (copy / "Video_LeftCamera").iterdir():
        shutil.copy(video, right / video.name.replace("LeftVideo", "RightVideo").replace("_comp", "_Comp"))
    records, _ = create_reader("disfa", copy, camera="right").read_all()
    assert {r.session for r in records} == {"right"}
    assert all("Video_RightCamera" in f.source.path for r in records for f in r.frames)


def test_bad_roots_name_what_was_expected(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        create_reader("disfa", tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="no ActionUnit_Labels/ folder"):
        create_reader("disfa", tmp_path)
    (tmp_path / "ActionUnit_Labels" / "SN001").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="Videos_LeftCamera/ or Video_LeftCamera/"):
        create_reader("disfa", tmp_path)
    with pytest.raises(ConfigError, match="camera must be one of"):
        create_reader("disfa", tmp_path, camera="middle")


def test_subject_ids_put_test_subjects_in_every_fold():
    proto = load_protocol("disfa")
    ids = DisfaLayout().subject_ids(6, np.random.default_rng(0))
    assert len(set(ids)) == 6 and "SN010" in ids and "SN031" in ids
    for fold in proto.folds:
        assert proto.subjects(fold.index, "test", ids)


def test_every_read_frame_decodes(read):
    from austack.faces.decode import iter_frames
    records, _ = read
    frames = frames_of(records, "SN003")          # the subject whose video has extra frames
    decoded = list(iter_frames([f.source for f in frames]))
    assert len(decoded) == N and all(isinstance(d, np.ndarray) and d.shape == (48, 64, 3) for d in decoded)
