"""GFT: the assumed default layout round-trips, and a YAML layout description overrides it."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from austack.datasets import create_reader
from austack.datasets.gft import GFTLayout
from austack.errors import ConfigError, DatasetNotFoundError
from austack.protocols import load_protocol
from austack.synth.layouts.base import LAYOUTS
from austack.synth.layouts.gft import GftLayout
from fake_sessions import frames_of, make_session, relative_anomalies

N = 5


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("gft")
    writer = GftLayout()
    subjects = writer.subject_ids(3, np.random.default_rng(0))
    sessions = [make_session(s, "1", N, seed=i) for i, s in enumerate(subjects)]
    return root, writer.write(root, sessions, np.random.default_rng(0))


def assert_matches(records, truth):
    assert [(r.subject, r.session) for r in records] == [(t.subject, t.session) for t in truth.sessions]
    for t in truth.sessions:
        frames = frames_of(records, t.subject)
        assert [f.frame for f in frames] == t.frames
        assert [f.source.index for f in frames] == [f - 1 for f in t.frames]
        assert np.array_equal(np.stack([f.labels for f in frames]), t.labels)
        assert all(f.intensities is None and f.landmarks is None for f in frames)


def test_default_layout_round_trip(written):
    root, truth = written
    records, report = create_reader("gft", root).read_all()
    assert_matches(records, truth)
    assert relative_anomalies(report, root) == sorted(truth.anomalies) == []
    assert any((t.labels == -1).any() for t in truth.sessions)       # code 9 read as unknown


def test_layout_and_reader_are_registered():
    from austack.datasets import list_readers
    assert LAYOUTS.get("gft") is GftLayout and "gft" in list_readers()


def test_subject_ids_cover_the_official_test_part():
    test = set(load_protocol("gft").parts["test"])
    ids = GftLayout().subject_ids(4, np.random.default_rng(1))
    assert len(ids) == 4 and 0 < len(test & set(ids)) < 4


def test_layout_override_from_yaml(written, tmp_path):
    root, truth = written
    other = tmp_path / "gft"
    for src in sorted((root / "AU_OCC").glob("*.csv")):
        pid = src.stem
        rows = list(csv.reader(src.open()))
        rows[0] = ["Frame"] + [c.replace("AU", "AU0") if len(c) == 3 else c for c in rows[0][1:]]
        rows[1:] = [[str(int(r[0]) - 1)] + [{"9": "-9"}.get(v, v) for v in r[1:]] for r in rows[1:]]
        (other / "Labels").mkdir(parents=True, exist_ok=True)
        with open(other / "Labels" / f"{pid}_AU.csv", "w", newline="") as fh:
            csv.writer(fh, delimiter=";").writerows(rows)
        (other / "Videos").mkdir(exist_ok=True)
        shutil.copy(root / "videos" / f"{pid}.avi", other / "Videos" / f"{pid}.avi")
    layout = tmp_path / "layout.yaml"
    layout.write_text("videos: Videos/{id}.avi\nlabels: Labels/{id}_AU.csv\nframe_column: Frame\n"
                      "au_columns: {AU01: 1, AU02: 2, AU04: 4, AU06: 6, AU10: 10, AU12: 12, AU14: 14,\n"
                      "             AU15: 15, AU23: 23, AU24: 24}\n"
                      "codes: {0: 0, 1: 1, -9: -1}\nframe_base: 0\ndelimiter: ';'\n")
    with pytest.raises(DatasetNotFoundError, match=r"no label file matches AU_OCC/\{id\}.csv"):
        create_reader("gft", other)
    records, report = create_reader("gft", other, layout=str(layout)).read_all()
    assert len(report) == 0
    for t in truth.sessions:
        frames = frames_of(records, t.subject)
        assert [f.frame for f in frames] == [f - 1 for f in t.frames]
        assert [f.source.index for f in frames] == [f - 1 for f in t.frames]
        assert np.array_equal(np.stack([f.labels for f in frames]), t.labels)
    # the same override from the command line
    import json

    from click.testing import CliRunner

    from austack.cli.main import cli

    res = CliRunner().invoke(cli, ["inspect", "gft", str(other), "--reader-opt", f"layout={layout}", "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)["subjects"]) == len(truth.sessions)
    assert CliRunner().invoke(cli, ["inspect", "gft", str(other)]).exit_code != 0      # the assumed layout
    assert CliRunner().invoke(cli, ["inspect", "gft", str(other), "--reader-opt", "layout"]).exit_code == 2


def test_bad_layout_files_are_config_errors(tmp_path):
    bad = tmp_path / "layout.yaml"
    bad.write_text("video: x/{id}.avi\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['video'\]; valid keys"):
        GFTLayout.from_yaml(bad)
    bad.write_text("videos: x.avi\n")
    with pytest.raises(ConfigError, match=r"must contain \{id\}"):
        GFTLayout.from_yaml(bad)
    bad.write_text("frame_base: 1.5\n")                  # never silently rounded to 1
    with pytest.raises(ConfigError, match=r"1\.5 is not an integer"):
        GFTLayout.from_yaml(bad)
    bad.write_text("codes: {0: 0, 1: 1, '9': -1}\n")    # a quoted integer is still one
    assert GFTLayout.from_yaml(bad).codes == {0: 0, 1: 1, 9: -1}


def test_undefined_codes_and_short_videos_are_reported(written, tmp_path):
    root, truth = written
    copy = tmp_path / "gft"
    shutil.copytree(root, copy)
    first = truth.sessions[0].subject
    table = copy / "AU_OCC" / f"{first}.csv"
    lines = table.read_text().splitlines()
    lines[1] = lines[1].split(",")[0] + ",7" + "".join("," + v for v in lines[1].split(",")[2:])
    lines.append(f"{N + 1}" + ",0" * 11)                 # a row past the end of the video
    table.write_text("\n".join(lines) + "\n")
    records, report = create_reader("gft", copy).read_all()
    assert sorted((a.kind, a.count) for a in report) == [("count_mismatch", 1), ("unknown_code", 1)]
    frames = frames_of(records, first)
    assert len(frames) == N and frames[0].labels[0] == -1


def test_bad_roots_and_headers(written, tmp_path):
    root, truth = written
    with pytest.raises(DatasetNotFoundError, match=r"ASSUMED default layout"):
        create_reader("gft", tmp_path)
    copy = tmp_path / "gft"
    shutil.copytree(root, copy)
    table = copy / "AU_OCC" / f"{truth.sessions[0].subject}.csv"
    table.write_text(table.read_text().replace("AU14", "AU_14"))
    records, report = create_reader("gft", copy).read_all()      # one bad file costs its session only
    [bad] = list(report)
    assert bad.kind == "unreadable" and bad.path == str(table)
    assert f"{table.name}: header lacks AU14" in bad.detail
    assert frames_of(records, truth.sessions[0].subject) == []
    assert [len(r.frames) for r in records[1:]] == [N] * (len(truth.sessions) - 1)
