"""Aff-Wild2: write the ABAW layout with -1 rows, a missing crop and a left/right pair; read it back."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from austack.datasets import create_reader
from austack.datasets.affwild2 import HEADER
from austack.errors import DatasetNotFoundError
from austack.synth.layouts.affwild2 import AffWild2Layout, face_crop
from austack.synth.layouts.base import LAYOUTS
from fake_sessions import face_points, frames_of, make_session, relative_anomalies

N = 5


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("affwild2")
    writer = AffWild2Layout()
    videos = writer.subject_ids(4, np.random.default_rng(0))
    sessions = [make_session(v, "1", N, seed=i) for i, v in enumerate(videos)]
    return root, writer.write(root, sessions, np.random.default_rng(0))


@pytest.fixture(scope="module")
def read(written):
    root, _ = written
    return create_reader("affwild2", root).read_all()


def test_registered():
    assert LAYOUTS.get("affwild2") is AffWild2Layout


def test_videos_splits_and_pairs(written, read):
    _, truth = written
    records, _ = read
    names = [t.subject for t in truth.sessions]
    assert sum(n.endswith("_left") for n in names) == 1 and sum(n.endswith("_right") for n in names) == 1
    assert {t.split for t in truth.sessions} == {"Train_Set", "Validation_Set"}
    assert [(r.subject, r.session) for r in records] == [(t.subject, t.session) for t in truth.sessions]
    for t in truth.sessions:
        assert {f.split for f in frames_of(records, t.subject)} == {t.split}


def test_frames_labels_and_crops_match_truth(written, read):
    root, truth = written
    records, _ = read
    for t in truth.sessions:
        frames = frames_of(records, t.subject)
        assert [f.frame for f in frames] == t.frames
        assert np.array_equal(np.stack([f.labels for f in frames]), t.labels)
        assert all(f.landmarks is None and f.intensities is None for f in frames)
        assert [f.source.path for f in frames] == [
            str(root / "cropped_aligned" / t.subject / f"{k:05d}.jpg") for k in t.frames]
    assert sum(len(t.frames) for t in truth.sessions) == 4 * N - 2   # one -1 row, one missing crop
    crop = cv2.imread(frames_of(records, truth.sessions[0].subject)[0].source.path)
    assert crop.shape == (112, 112, 3)


def test_anomalies_equal_truth(written, read):
    root, truth = written
    _, report = read
    assert relative_anomalies(report, root) == sorted(truth.anomalies)
    assert report.counts() == {"invalid_row": 1, "missing_image": 1}


def test_face_crop_levels_the_eyes():
    h, w = 96, 128
    pts = face_points(h, w)
    tilt = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    tilted = pts @ tilt[:, :2].T + tilt[:, 2]
    marker = np.zeros((h, w, 3), np.uint8)
    for x, y in (tilted[36:42].mean(0), tilted[42:48].mean(0)):
        cv2.circle(marker, (round(x), round(y)), 3, (255, 255, 255), -1)
    crop = face_crop(marker, tilted)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    left, right = ys[xs < 56].mean(), ys[xs >= 56].mean()
    assert abs(left - right) < 1.5


def test_header_other_than_the_challenge_one_is_an_error(written, tmp_path):
    root, truth = written
    copy = tmp_path / "aw2"
    shutil.copytree(root, copy)
    video = truth.sessions[0]
    table = copy / "annotations" / "AU_Detection_Challenge" / video.split / f"{video.subject}.txt"
    table.write_text(table.read_text().replace(HEADER, HEADER.replace("AU26", "AU27")))
    records, report = create_reader("affwild2", copy).read_all()   # the session is lost, not the run
    bad = [a for a in report if a.kind == "unreadable"]
    assert [a.path for a in bad] == [str(table)] and f"{table.name} must start with the header" in bad[0].detail
    assert frames_of(records, video.subject) == []
    assert sum(len(r.frames) for r in records) == sum(len(t.frames) for t in truth.sessions[1:])


def test_older_au_set_layout_and_missing_crop_folder(written, tmp_path):
    root, truth = written
    copy = tmp_path / "aw2"
    shutil.copytree(root, copy)
    (copy / "annotations" / "AU_Detection_Challenge").rename(copy / "annotations" / "AU_Set")
    (copy / "annotations" / "AU_Set" / "Train_Set").rename(copy / "annotations" / "AU_Set" / "Training_Set")
    gone = truth.sessions[1]
    shutil.rmtree(copy / "cropped_aligned" / gone.subject)
    records, report = create_reader("affwild2", copy).read_all()
    assert {r.subject: {f.split for f in r.frames} for r in records if r.frames} == {
        t.subject: {t.split} for t in truth.sessions if t is not gone}
    assert frames_of(records, gone.subject) == []
    assert report.counts()["missing_image"] == 1 + len(gone.frames)


def test_bad_roots_name_what_was_expected(written, tmp_path):
    root, _ = written
    with pytest.raises(DatasetNotFoundError, match=r"no AU_Detection_Challenge/ \(or AU_Set/\) folder"):
        create_reader("affwild2", tmp_path)
    copy = tmp_path / "aw2"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("cropped_aligned"))
    with pytest.raises(DatasetNotFoundError, match="no cropped_aligned/ folder"):
        create_reader("affwild2", copy)
