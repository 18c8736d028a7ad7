"""`austack prepare`, `verify`, `info` at the command line."""
from __future__ import annotations

import json

import h5py
import pytest
from click.testing import CliRunner

from austack.cli.main import cli

import _prepare_fake  # noqa: F401  (registers the test-fake reader)
from _prepare_fake import write_fake_raw


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    write_fake_raw(root / "raw", subjects=("S1", "S2"), sessions=("T1",), frames=2, truncated=False)
    res = CliRunner().invoke(cli, ["prepare", "test-fake", str(root / "raw"), str(root / "s.h5"),
                                   "--landmarks", "shipped"])
    assert res.exit_code == 0, res.output
    # what it wrote, from the store itself (prepare's own lines hold paths a terminal wraps)
    summary = json.loads(CliRunner().invoke(cli, ["info", str(root / "s.h5"), "--json"]).output)
    assert (summary["frames"], summary["sessions"]) == (4, 2) and "no_face" in summary["anomalies"]
    return root / "s.h5"


@pytest.mark.parametrize("command", ["prepare", "verify", "info"])
def test_help(command):
    res = CliRunner().invoke(cli, [command, "--help"])
    assert res.exit_code == 0 and "Usage" in res.output


def test_bad_options_exit_2(tmp_path):
    res = CliRunner().invoke(cli, ["prepare", "bp4d", str(tmp_path), str(tmp_path / "o.h5"), "--landmarks", "x"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["prepare", "bp4d", str(tmp_path / "nope"), str(tmp_path / "o.h5")])
    assert res.exit_code == 2


def test_verify_and_info(store, tmp_path):
    # structured output: a long TMPDIR or a narrow terminal cannot wrap what is asserted on
    res = CliRunner().invoke(cli, ["verify", str(store), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["ok"], res.output
    res = CliRunner().invoke(cli, ["info", str(store), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert "fold 1 test" in [g["name"] for g in summary["folds"]]
    assert "S2" in [g["name"] for g in summary["subjects"]]
    assert summary["attrs"]["protocol"] == "test-fake-3fold@v1" and summary["path"] == str(store)
    res = CliRunner().invoke(cli, ["info", str(store)])       # the human form still runs
    assert res.exit_code == 0 and "{" not in res.output.split("alignment", 1)[1].split(";")[0]
    damaged = tmp_path / "d.h5"
    damaged.write_bytes(store.read_bytes())
    with h5py.File(damaged, "r+") as f:
        f["frame"][1] = f["frame"][0]
    res = CliRunner().invoke(cli, ["verify", str(damaged), "--json"])
    assert res.exit_code == 1 and any("duplicate frame" in p for p in json.loads(res.output)["problems"])


def test_missing_store_is_one_line(tmp_path):
    res = CliRunner().invoke(cli, ["info", str(tmp_path / "none.h5")])
    assert res.exit_code == 1 and "does not exist" in res.output and "Traceback" not in res.output


def test_info_fits_an_80_column_terminal_with_12_aus(tiny_store):
    res = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["info", str(tiny_store)])
    assert res.exit_code == 0, res.output
    tables = res.output[res.output.index("Subjects"):]
    assert max(len(line) for line in tables.splitlines()) <= 80
    assert "…" not in tables                      # nothing truncated
    header = next(line for line in tables.splitlines() if "frames" in line).split()
    assert header[-12:] == ["1", "2", "4", "6", "7", "10", "12", "14", "15", "17", "23", "24"]


def test_info_says_the_alignment_in_words():
    from austack.store import describe_alignment

    assert describe_alignment({"method": "similarity-49", "size": 72, "box_enlarge": 2.0, "border": 128,
                               "interpolation": "bilinear"}) == \
        "similarity-49, 72 px, box 2x, border 128, interpolation bilinear"
