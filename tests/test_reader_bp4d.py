"""BP4D: write the raw layout with its writer, read it back, compare with the writer's Truth.

TorchGeo's checklist: length, item types, out-of-range / bad arguments, and a missing root
matched on the message text.
"""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from austack.datasets import create_reader, list_readers
from austack.datasets.base import AnomalyReport, FrameRecord, PixelSource, SessionRecord, SessionRef
from austack.datasets.bp4d import BP4DReader, encode_labels, index_names, read_occ_csv
from austack.errors import ConfigError, DatasetNotFoundError, RawDataError
from austack.protocols import load_protocol
from austack.synth.layouts import base as layouts
from austack.faces.align import landmarks_68_to_49
from austack.synth.layouts.bp4d import THREE_DIGIT_SUBJECTS

from fake_sessions import make_session, relative_anomalies

N_SUBJECTS, N_TASKS, N_FRAMES = 3, 2, 6
AUS = load_protocol("bp4d").aus


def synth_sessions(writer, seed: int):
    """N_SUBJECTS x N_TASKS noise sessions under the ids the writer draws."""
    rng = np.random.default_rng(seed)
    return [make_session(subject, task, N_FRAMES, seed=100 * seed + i)
            for i, (subject, task) in enumerate((s, t) for s in writer.subject_ids(N_SUBJECTS, rng)
                                                for t in writer.session_ids(s, N_TASKS))]


@pytest.fixture(scope="module")
def sessions():
    return synth_sessions(layouts.LAYOUTS.get("bp4d")(), seed=7)


@pytest.fixture(scope="module")
def written(tmp_path_factory, sessions):
    root = tmp_path_factory.mktemp("bp4d")
    truth = layouts.LAYOUTS.get("bp4d")().write(root, sessions, np.random.default_rng(7))
    return root, truth


@pytest.fixture(scope="module")
def read(written):
    root, truth = written
    records, report = BP4DReader(root).read_all()
    return records, report


@pytest.fixture
def copy(written, tmp_path):
    """A private copy of the written root, for tests that break it."""
    root, truth = written
    dst = tmp_path / "bp4d"
    shutil.copytree(root, dst)
    return dst, truth


def by_session(truth):
    return {(t.subject, t.session): t for t in truth.sessions}


def test_registered(written):
    root, _ = written
    assert "bp4d" in list_readers("bp4d*") and "bp4d" in layouts.LAYOUTS
    reader = create_reader("bp4d", root, frame_offset=None)     # None keeps the default
    assert isinstance(reader, BP4DReader) and reader.frame_offset == 0
    assert reader.options == {"frame_offset": 0, "protocol": "bp4d-3fold@v1"}
    assert reader.protocol == "bp4d-3fold@v1"


def test_protocol_option_is_the_one_in_effect(written, tmp_path):
    custom = tmp_path / "bp4d-fewer@v1.yaml"
    text = Path(load_protocol("bp4d").path).read_text()
    custom.write_text(text.replace("name: bp4d-3fold", "name: bp4d-fewer")
                      .replace("aus: [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]", "aus: [12, 4]"))
    reader = BP4DReader(written[0], protocol=str(custom))
    assert reader.protocol == "bp4d-fewer@v1" and BP4DReader.protocol == "bp4d-3fold@v1"
    records, _ = reader.read_all()
    full, _ = BP4DReader(written[0]).read_all()
    got = np.stack([f.labels for f in records[0].frames])
    want = np.stack([f.labels for f in full[0].frames])[:, [AUS.index(12), AUS.index(4)]]
    np.testing.assert_array_equal(got, want)


def test_sessions_listed_in_order(written):
    root, truth = written
    refs = create_reader("bp4d", root).sessions()
    assert len(refs) == N_SUBJECTS * N_TASKS
    assert all(isinstance(r, SessionRef) for r in refs)
    assert [(r.subject, r.session) for r in refs] == sorted(by_session(truth))


def test_subjects_cover_every_fold_and_three_digit_padding(written):
    root, truth = written
    subjects = {t.subject for t in truth.sessions}
    protocol = load_protocol("bp4d")
    for fold in (1, 2, 3):
        assert protocol.subjects(fold, "test", subjects), f"fold {fold} has no test subject"
    assert subjects & THREE_DIGIT_SUBJECTS


def mismatched_mats(truth) -> set[tuple[str, str]]:
    """Sessions whose 2DFeatures count fits neither convention. The writer's truth still keeps
    their first frames' landmarks (the old reading by first frame); the reader now refuses to
    guess and leaves all of them unset."""
    return {tuple(Path(path).stem.split("_")) for kind, path in truth.anomalies if kind == "count_mismatch"}


def test_frames_labels_landmarks_equal_truth(read, written):
    records, _ = read
    _, truth = written
    expected = by_session(truth)
    unmatched = mismatched_mats(truth)
    assert len(records) == len(expected) and unmatched
    for rec in records:
        t = expected[rec.subject, rec.session]
        assert isinstance(rec, SessionRecord)
        assert [f.frame for f in rec.frames] == t.frames
        assert rec.frames[0].frame > 1                      # CSV frames start far above 1
        np.testing.assert_array_equal(np.stack([f.labels for f in rec.frames]), t.labels)
        if (rec.subject, rec.session) in unmatched:
            assert all(f.landmarks is None for f in rec.frames) and rec.landmark_scheme is None
            continue
        assert [f.frame for f in rec.frames if f.landmarks is None] == t.landmarks_missing
        assert rec.landmark_scheme == t.landmark_points
        for f in rec.frames:
            assert isinstance(f, FrameRecord) and isinstance(f.source, PixelSource)
            assert f.source.kind == "image" and f.source.path.endswith(".jpg")
            assert f.labels.dtype == np.int8 and f.labels.shape == (len(AUS),)
            assert f.intensities is None


def test_unknown_code_9_read_as_minus_one(read, written):
    _, truth = written
    assert any((t.labels == -1).any() for t in truth.sessions), "the writer wrote no code 9"
    records, _ = read
    assert any((np.stack([f.labels for f in r.frames]) == -1).any() for r in records)


def test_landmarks_are_the_49_points_made_zero_based(read, written, sessions):
    records, _ = read
    _, truth = written
    rendered = {(s.subject, s.session): [lm for _, lm in s.frames()] for s in sessions}
    checked = 0
    for rec in records:
        first = by_session(truth)[rec.subject, rec.session].frames[0]   # the first coded frame is never dropped
        for f in rec.frames:
            if f.landmarks is None:
                continue
            assert f.landmarks.shape == (49, 2) and f.landmarks.dtype == np.float32
            # The writer stored the 49 of the rendered 68, + 1 (MATLAB); read back they are 0-based.
            expected = landmarks_68_to_49(rendered[rec.subject, rec.session][f.frame - first])
            np.testing.assert_allclose(f.landmarks, expected, atol=1e-4)
            checked += 1
    assert checked > 20


def test_anomalies_equal_truth(read, written):
    root, truth = written
    _, report = read
    assert relative_anomalies(report, root.resolve()) == sorted(truth.anomalies)
    assert {k for k, _ in truth.anomalies} == {"missing_image", "missing_landmarks", "count_mismatch"}


def test_both_header_styles_and_bom(written):
    root, truth = written
    csvs = sorted((root / "AUCoding" / "AU_OCC").glob("*.csv"))
    styles = {read_occ_csv(p, AUS, AnomalyReport()).style for p in csvs}
    assert styles == {"legacy", "named"}
    assert any(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in csvs)
    assert any(p.read_text(encoding="utf-8-sig").startswith("1,1,2,4,") for p in csvs)


def test_padding_probed_per_folder(written):
    root, truth = written
    frames = root / "Sequences(2D+3D)"
    for t in truth.sessions:
        names = {p.name for p in (frames / t.subject / t.session).iterdir()}
        if t.subject in THREE_DIGIT_SUBJECTS:
            assert "999.jpg" in names and "1001.jpg" in names      # 3 digits, wider past 999
        else:
            assert all(len(n) == len("0643.jpg") and n.startswith("0") for n in names)


def test_index_names_width_and_expected_name():
    report = AnomalyReport()
    files = index_names(["998.jpg", "999.jpg", "1000.jpg", "Thumbs.db"], "T1",
                        lambda n: PixelSource("image", n), report)
    assert sorted(files.sources) == [998, 999, 1000] and files.width == 3
    assert files.expected(5) == "T1/005.jpg" and files.expected(1001) == "T1/1001.jpg"
    files = index_names(["0643.jpg", "643.jpg"], "T1", lambda n: PixelSource("image", n), report)
    assert list(files.sources) == [643]
    assert [(a.kind, a.path) for a in report] == [("unexpected_file", "T1/643.jpg")]


def test_named_header_first_cell_is_the_frame(tmp_path):
    path = tmp_path / "F001_T1.csv"
    path.write_text("1,1,2,4,6,7,10,12,14,15,17,23,24\n"
                    "2440,1,0,0,1,1,0,0,0,0,0,9,0\n2441,0,0,0,1,1,0,1,0,0,0,9,1\n")
    report = AnomalyReport()
    table = read_occ_csv(path, AUS, report)
    assert table.style == "named" and table.frames.tolist() == [2440, 2441]
    labels = encode_labels(table, load_protocol("bp4d").label, AUS, report)
    assert labels.tolist() == [[1, 0, 0, 1, 1, 0, 0, 0, 0, 0, -1, 0], [0, 0, 0, 1, 1, 0, 1, 0, 0, 0, -1, 1]]
    assert len(report) == 0


def test_legacy_header_last_column_is_occlusion(tmp_path):
    path = tmp_path / "F001_T1.csv"
    row = ["643"] + ["9"] * 98 + ["1"]           # all uncoded, occluded
    row[4] = "1"                                 # AU4 present
    path.write_text(",".join(map(str, range(100))) + "\n" + ",".join(row) + "\n")
    table = read_occ_csv(path, AUS, AnomalyReport())
    assert table.style == "legacy"
    assert table.codes.tolist() == [[9, 9, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9]]


def test_odd_code_reported_with_its_file(copy):
    root, truth = copy
    csvs = sorted((root / "AUCoding" / "AU_OCC").glob("*.csv"))
    label_file = next(p for p in csvs if p.read_text(encoding="utf-8-sig").startswith("1,1,"))
    lines = label_file.read_text(encoding="utf-8-sig").splitlines()
    cells = lines[1].split(",")
    cells[1 + AUS.index(12)] = "5"               # named header: AU columns in protocol order
    lines[1] = ",".join(cells)
    label_file.write_text("\n".join(lines) + "\n")
    reader = BP4DReader(root)
    report = AnomalyReport()
    ref = next(r for r in reader.sessions() if r.label_file == str(label_file.resolve()))
    rec = reader.read_session(ref, report)
    [odd] = [a for a in report if a.kind == "unknown_code"]
    assert odd.path == str(label_file.resolve()) and odd.count == 1
    assert "code(s) 5 (AU12 x1)" in odd.detail
    first = next(f for f in rec.frames if f.frame == int(cells[0]))
    assert first.labels[AUS.index(12)] == -1


def test_missing_frame_folder_is_one_counted_anomaly(copy):
    root, truth = copy
    t = truth.sessions[-1]
    shutil.rmtree(root / "Sequences(2D+3D)" / t.subject / t.session)
    reader = BP4DReader(root)
    report = AnomalyReport()
    rec = reader.read_session(next(r for r in reader.sessions() if (r.subject, r.session) == (t.subject, t.session)),
                              report)
    assert rec.frames == []
    missing = [a for a in report if a.kind == "missing_image"]
    assert len(missing) == 1 and missing[0].count == N_FRAMES and "does not exist" in missing[0].detail


def test_unreadable_landmark_file_keeps_frames(copy):
    root, truth = copy
    t = truth.sessions[-1]
    mat = root / "2DFeatures" / f"{t.subject}_{t.session}.mat"
    mat.write_bytes(b"garbage")
    records, report = BP4DReader(root).read_all()
    rec = next(r for r in records if (r.subject, r.session) == (t.subject, t.session))
    assert [f.frame for f in rec.frames] == t.frames
    assert all(f.landmarks is None for f in rec.frames) and rec.landmark_scheme is None
    bad = [a for a in report if a.kind == "unreadable"]
    assert len(bad) == 1 and bad[0].path == str(mat.resolve()) and bad[0].count == len(t.frames)


@pytest.mark.parametrize("alias", ["Sequences_2D+3D", "2D+3D"])
def test_frame_folder_aliases(copy, alias):
    root, truth = copy
    (root / "Sequences(2D+3D)").rename(root / alias)
    records, _ = BP4DReader(root).read_all()
    assert sum(len(r.frames) for r in records) == sum(len(t.frames) for t in truth.sessions)
    assert alias in records[0].frames[0].source.path


def test_frame_offset_option(written):
    root, truth = written
    records, report = BP4DReader(root, frame_offset=1).read_all()
    # f -> (f+1).jpg: the last coded frame lands on the uncoded extra jpg, and only the frame
    # before the injected hole lands on a missing file.
    assert all(int(Path(f.source.path).stem) == f.frame + 1 for r in records for f in r.frames)
    assert report.counts()["missing_image"] == 1


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown option.*frame_ofset.*options are frame_offset, protocol"):
        BP4DReader("/nonexistent", frame_ofset=1)
    with pytest.raises(ConfigError, match="frame_offset must be an integer"):
        BP4DReader("/nonexistent", frame_offset="1")
    with pytest.raises(ConfigError, match=r"protocol disfa-3fold@v1 is for disfa, not bp4d"):
        BP4DReader("/nonexistent", protocol="disfa-3fold@v1")


def test_not_bp4d(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        BP4DReader(tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match=r"AUCoding/AU_OCC does not exist.*Expected a raw bp4d "
                                                   r"distribution.*Sequences\(2D\+3D\)/<SUBJ>/<TASK>/<n>\.jpg"):
        BP4DReader(tmp_path)
    (tmp_path / "AUCoding" / "AU_OCC").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=r"holds no <SUBJ>_<TASK>\.csv"):
        BP4DReader(tmp_path)
    (tmp_path / "AUCoding" / "AU_OCC" / "F001_T1.csv").write_text("1,1\n")
    with pytest.raises(DatasetNotFoundError, match=r"Sequences\(2D\+3D\) does not exist \(nor Sequences_2D\+3D, "
                                                   r"2D\+3D\)") as e:
        BP4DReader(tmp_path)
    assert e.value.path == str(tmp_path.resolve())


def test_unreadable_csv_is_reported_and_session_skipped(copy):
    root, truth = copy
    label_file = sorted((root / "AUCoding" / "AU_OCC").glob("*.csv"))[0]
    label_file.write_text("frame,AU1,AU2\n100,1,0\n")         # lacks 10 of the 12 AUs
    reader = BP4DReader(root)
    report = AnomalyReport()
    rec = reader.read_session(reader.sessions()[0], report)
    assert rec.frames == []
    [a] = list(report)
    assert a.kind == "unreadable" and a.path == str(label_file.resolve())
    assert "no column for AU 4, 6, 7" in a.detail


def test_session_ref_of_another_root(written):
    reader = BP4DReader(written[0])
    with pytest.raises(RawDataError, match=r"nowhere/F001_T1\.csv does not exist; pass a SessionRef from sessions"):
        reader.read_session(SessionRef("F001", "T1", "/nowhere/F001_T1.csv"), AnomalyReport())


def test_reader_pickles_for_workers(written):
    root, truth = written
    reader = pickle.loads(pickle.dumps(BP4DReader(root)))
    ref = pickle.loads(pickle.dumps(reader.sessions()[0]))
    rec = reader.read_session(ref, AnomalyReport())
    assert [f.frame for f in rec.frames] == by_session(truth)[ref.subject, ref.session].frames


# --- 2DFeatures entries matched to frames ---------------------------------------------------------

def tiny_bp4d(root: Path, csv_frames: list[int], jpgs: list[int], entries: int | None) -> Path:
    """One session F001/T1: a named-header CSV of `csv_frames` (file order), empty jpg files
    `jpgs`, and a .mat of `entries` 49x2 entries, entry k filled with k + 1 (MATLAB 1-based),
    so a frame's 0-based landmarks say which entry it got."""
    (root / "AUCoding" / "AU_OCC").mkdir(parents=True)
    rows = [",".join(["1", *map(str, AUS)])] + [",".join([str(f)] + ["0"] * len(AUS)) for f in csv_frames]
    (root / "AUCoding" / "AU_OCC" / "F001_T1.csv").write_text("\n".join(rows) + "\n")
    folder = root / "Sequences(2D+3D)" / "F001" / "T1"
    folder.mkdir(parents=True)
    for n in jpgs:
        (folder / f"{n:04d}.jpg").write_bytes(b"")
    if entries is not None:
        from austack.datasets._matlab import write_v73_cells
        (root / "2DFeatures").mkdir()
        write_v73_cells(root / "2DFeatures" / "F001_T1.mat", "fit/pred",
                        [np.full((49, 2), k + 1.0) for k in range(entries)])
    return root


def entry_of_each_frame(root: Path) -> tuple[dict[int, int | None], AnomalyReport]:
    reader = BP4DReader(root)
    report = AnomalyReport()
    rec = reader.read_session(reader.sessions()[0], report)
    return {f.frame: None if f.landmarks is None else int(f.landmarks[0, 0]) for f in rec.frames}, report


def test_landmarks_one_entry_per_csv_row(tmp_path):
    # rows 102, 100, 101, 103 in the file: entry k is the file's data row k
    entries, report = entry_of_each_frame(tiny_bp4d(tmp_path, [102, 100, 101, 103], list(range(98, 106)), 4))
    assert entries == {100: 1, 101: 2, 102: 0, 103: 3}
    assert [a.kind for a in report] == ["out_of_order"]


def test_landmarks_one_entry_per_jpg_of_the_folder(tmp_path):
    # 8 jpgs 98..105 and 8 entries: entry k is the k-th jpg by number, whatever the CSV holds
    entries, report = entry_of_each_frame(tiny_bp4d(tmp_path, [100, 101, 102, 103], list(range(98, 106)), 8))
    assert entries == {100: 2, 101: 3, 102: 4, 103: 5} and len(report) == 0


def test_landmarks_per_jpg_skip_the_hole_of_a_missing_jpg(tmp_path):
    jpgs = [99, 100, 102, 103, 104]                       # no 101.jpg: 5 jpgs, 4 rows, 5 entries
    entries, report = entry_of_each_frame(tiny_bp4d(tmp_path, [100, 101, 102, 103], jpgs, 5))
    assert entries == {100: 1, 102: 2, 103: 3}
    assert [a.kind for a in report] == ["missing_image"]


def test_landmarks_with_a_count_that_fits_no_convention_are_left_unset(tmp_path):
    entries, report = entry_of_each_frame(tiny_bp4d(tmp_path, [100, 101, 102, 103], list(range(98, 106)), 6))
    assert entries == {100: None, 101: None, 102: None, 103: None}
    [a] = list(report)
    assert a.kind == "count_mismatch" and a.path.endswith("F001_T1.mat") and a.count == 4
    assert "6 landmark entries, but 4 data rows in F001_T1.csv and 8 jpgs" in a.detail


def test_landmarks_when_rows_and_jpgs_agree_in_count_go_by_row(tmp_path):
    jpgs = [100, 101, 103, 104, 105]                      # 5 jpgs, 5 rows, 5 entries: by row
    entries, report = entry_of_each_frame(tiny_bp4d(tmp_path, [100, 101, 102, 103, 104], jpgs, 5))
    assert entries == {100: 0, 101: 1, 103: 3, 104: 4}
    assert [a.kind for a in report] == ["missing_image"]


# --- rows: strict cells, cell counts, repeats, order -----------------------------------------------

def test_a_row_with_one_cell_too_many_or_too_few_is_dropped_not_shifted(tmp_path):
    path = tmp_path / "F001_T1.csv"
    header = ",".join(["1", *map(str, AUS)])
    good = "100," + ",".join(["1"] + ["0"] * 11)
    extra = "101,0," + ",".join(["1"] + ["0"] * 11)         # a stray cell would shift AU1 -> AU2
    short = "102," + ",".join(["1"] * 11)
    path.write_text("\n".join([header, good, extra, short]) + "\n")
    report = AnomalyReport()
    table = read_occ_csv(path, AUS, report)
    assert table.frames.tolist() == [100]
    [a] = list(report)
    assert (a.kind, a.count) == ("invalid_row", 2) and "lines 3, 4" in a.detail.replace("line(s)", "lines")


@pytest.mark.parametrize("cell", ["0.5", "1.7", "²", "1e400", "inf", "nan", "-", "", "9" * 30, "١", "+1", "0x1"])
def test_odd_label_cells_are_unknown_and_reported(tmp_path, cell):
    path = tmp_path / "F001_T1.csv"
    path.write_text(",".join(["1", *map(str, AUS)]) + "\n" + ",".join(["100", cell] + ["1"] * 11) + "\n")
    report = AnomalyReport()
    table = read_occ_csv(path, AUS, report)
    labels = encode_labels(table, load_protocol("bp4d").label, AUS, report)
    assert labels.tolist() == [[-1] + [1] * 11]
    [a] = list(report)
    assert (a.kind, a.count, a.path) == ("unknown_code", 1, str(path)) and "AU1 x1" in a.detail


@pytest.mark.parametrize("cell", ["²", "1.0", "1e3", "-5", "9" * 30, " ", "x"])
def test_odd_frame_cells_drop_their_row(tmp_path, cell):
    path = tmp_path / "F001_T1.csv"
    path.write_text(",".join(["1", *map(str, AUS)]) + "\n" + ",".join([cell] + ["1"] * 12) + "\n"
                    + ",".join(["7"] + ["0"] * 12) + "\n")
    report = AnomalyReport()
    assert read_occ_csv(path, AUS, report).frames.tolist() == [7]
    assert [(a.kind, a.count) for a in report] == [("invalid_row", 1)] and "line(s) 2" in report.items[0].detail


def test_repeated_and_unordered_frames_pass_verify_after_prepare(tmp_path):
    from austack.prepare import prepare
    from austack.store import open_store, verify
    from austack.synth import synthesize

    raw = tmp_path / "raw"
    synthesize(raw, "bp4d", subjects=2, sessions=1, frames=4, size=96)
    csv_path = sorted((raw / "AUCoding" / "AU_OCC").glob("*.csv"))[1]
    lines = csv_path.read_bytes().decode("utf-8-sig").splitlines()
    first = lines[1]
    lines[1], lines[2] = lines[2], lines[1]                  # out of order
    lines.append(first.replace(",0,", ",1,", 1).replace(",1,", ",0,", 1))   # a repeat, other labels
    csv_path.write_text("\n".join(lines) + "\n")
    report = prepare("bp4d", raw, tmp_path / "s.h5", landmarks="shipped", size=32)
    kinds = report.anomalies.counts()
    assert kinds["out_of_order"] == 1 and kinds["invalid_row"] == 1
    assert verify(tmp_path / "s.h5").ok, verify(tmp_path / "s.h5").problems
    frame = int(first.split(",")[0])
    with open_store(tmp_path / "s.h5") as s:
        i = int(np.flatnonzero(s.frames[:] == frame)[0])
        expected = BP4DReader(raw).read_all()[0]
        kept = next(f for r in expected for f in r.frames if f.frame == frame)
        assert s.labels[i].tolist() == kept.labels.tolist()   # the first row's labels, not the repeat's
