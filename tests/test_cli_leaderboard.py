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
    for opt in ("--dataset", "--db", "--format", "--published / --no-published", "--all", "--other-boards",
                "-o, --output"):
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


def test_json_has_identity_counts_and_ends_with_a_newline(db):
    res = invoke("--db", db, "--format", "json", "--no-published")
    assert res.exit_code == 0 and res.output.endswith("}\n")
    [board] = json.loads(res.output)["boards"]
    [rec] = board["rows"]
    assert (rec["n_folds"], rec["n_seeds"], rec["synthetic"], rec["store_checksum"]) == (3, 1, False, "c")
    assert "config_hash" in rec and rec["ci"] is None                # no stored predictions here
    assert any(n.startswith("no CI for #1 resnet18 + wce") for n in board["notes"])


def test_ci_column_and_its_note(db):
    res = invoke("--db", db, "--no-published", "--ci")
    assert res.exit_code == 0 and "95% CI" in res.output and "no CI for #1 resnet18 + wce" in res.output


def test_synthetic_rows_have_their_own_heading(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsDB(path) as d:
        d.insert_many([row(k, 0.3, synthetic=True, config_hash="f" * 12) for k in (1, 2, 3)])
    res = invoke("--db", str(path), "--dataset", "bp4d")
    assert res.exit_code == 0, res.output
    synthetic = res.output.index("bp4d layout, synthetic: bp4d-3fold@v1")
    published = res.output.index(": published")
    assert published < synthetic                  # the real board (published rows) first, then its own
    legend = res.output.index("F1 in percent")
    assert "cfg ffffffff" in res.output[synthetic:] and "published" not in res.output[synthetic:legend]


def test_a_database_of_failures_names_them(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsDB(path) as d:
        d.insert_many([row(k, 0.0, status="error", error="disk full", accuracy=[], f1_mean=None)
                       for k in (1, 2)])
    res = invoke("--db", str(path), "--no-published")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "2 failed fold run(s)" in res.output and "resnet18 + wce fold 2 seed 0: disk full" in res.output
    assert "holds no finished result, only the failed or hidden runs listed above" in res.output
    res = invoke("--db", str(path), "--dataset", "bp4d")                    # published rows, and the note
    assert res.exit_code == 0 and "resnet18 + wce fold 1 seed 0: disk full" in res.output


def test_table_fits_80_columns_with_per_au(db, tmp_path):
    res = CliRunner().invoke(cli, ["leaderboard", "--db", db, "--dataset", "bp4d", "--per-au", "--all"],
                             terminal_width=80, env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert max(map(len, res.output.splitlines())) <= 80 and "AU24" in res.output and "…" not in res.output
    out = tmp_path / "board.txt"
    invoke("--db", db, "--per-au", "-o", str(out))
    assert max(map(len, out.read_text().splitlines())) <= 80
