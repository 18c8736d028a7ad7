"""`austack leaderboard` through click's CliRunner: help, every format, -o, and bad input."""
from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from austack import load_protocol
from austack.cli.main import cli
from austack.results.db import ResultsDB
from austack.results.schema import ResultRow

PROTO = load_protocol("bp4d-3fold@v1")


def row(fold, f1, **kw) -> ResultRow:
    base = dict(dataset="bp4d", protocol=PROTO.id, protocol_hash=PROTO.hash, store="/s.h5", store_checksum="c",
                fold=fold, backbone="resnet18", loss="wce", loss_options={}, seed=0, epochs=2, config={},
                aus=list(PROTO.aus), f1=[f1] * 12, accuracy=[0.75] * 12, f1_mean=f1, accuracy_mean=0.75)
    return ResultRow(**{**base, **kw})


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("lb") / "results.sqlite"
    with ResultsDB(path) as db:
        db.insert_many([row(1, 0.40), row(2, 0.50), row(3, 0.45),
                        row(1, 0.90, loss="aunce.paper", comparable=False)])
    return str(path)


def invoke(*args):
    return CliRunner().invoke(cli, ["leaderboard", *args])


def test_help():
    res = invoke("--help")
    assert res.exit_code == 0
    for opt in ("--dataset", "--db", "--format", "--published / --no-published", "--all", "-o, --output"):
        assert opt in res.output


def test_table(db):
    res = invoke("--db", db, "--no-published")
    assert res.exit_code == 0, res.output
    assert "resnet18 + wce" in res.output and "45.0" in res.output and "3/3" in res.output
    assert "aunce.paper" not in res.output and "hidden; --all shows them" in res.output


def test_csv(db):
    res = invoke("--db", db, "--format", "csv", "--no-published")
    [rec] = list(csv.DictReader(io.StringIO(res.output)))
    assert (rec["method"], float(rec["avg"]), float(rec["avg_sd"]), float(rec["AU1"])) == \
        ("resnet18 + wce", 45.0, 5.0, 45.0)


def test_json_with_published(db):
    res = invoke("--db", db, "--format", "json", "--dataset", "bp4d")
    [board] = json.loads(res.output)["boards"]
    kinds = {r["kind"] for r in board["rows"]}
    assert kinds == {"measured", "published"}
    assert all(r["citation"] for r in board["rows"] if r["kind"] == "published")


def test_md_and_latex(db):
    md = invoke("--db", db, "--format", "md", "--no-published", "--all").output
    assert "| 1 | measured | resnet18 + aunce.paper |" in md and "not comparable (debug subsample)" in md
    latex = invoke("--db", db, "--format", "latex", "--no-published").output
    assert r"\begin{tabular}" in latex and r"\textbf{45.0 $\pm$ 5.0}" in latex


def test_output_file(db, tmp_path):
    out = tmp_path / "boards" / "bp4d.md"
    res = invoke("--db", db, "--format", "md", "--dataset", "bp4d", "-o", str(out))
    assert res.exit_code == 0 and out.read_text().startswith("### bp4d: bp4d-3fold@v1")


def test_missing_db_shows_published_only_or_fails(tmp_path):
    missing = str(tmp_path / "none.sqlite")
    res = invoke("--db", missing, "--format", "csv", "--dataset", "disfa")
    assert res.exit_code == 0 and "published" in res.output
    res = invoke("--db", missing, "--no-published")
    assert res.exit_code == 1 and "no results database at" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "none.sqlite").exists()


def test_bad_input_exits_2_without_traceback(db):
    res = invoke("--db", db, "--format", "xls")
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = invoke("--db", db, "--dataset", "nosuchset", "--no-published")
    assert res.exit_code == 1 and "nothing to show for dataset 'nosuchset'" in res.output
