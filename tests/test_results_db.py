"""The SQLite results database: round trip, concurrent writers, error rows, bad files."""
from __future__ import annotations

import csv
import json
import multiprocessing as mp
import sqlite3
from dataclasses import fields, replace

import pytest

from austack.errors import ResultsError
from austack.results.db import SCHEMA_VERSION, ResultsDB
from austack.results.schema import ResultRow

AUS = [1, 2, 4]


def make_row(**kw) -> ResultRow:
    base = dict(dataset="bp4d", protocol="bp4d-3fold@v1", protocol_hash="0123456789ab", store="/data/bp4d.h5",
                store_checksum="cafe", fold=1, backbone="test_tiny", loss="aunce.paper",
                loss_options={"tau": 0.5, "p": [0.15, 0.15, 0.7]}, seed=0, epochs=2,
                config={"batch_size": 8, "folds": [1, 2, 3]}, aus=AUS, f1=[0.5, 0.25, 0.125],
                accuracy=[0.9, 0.8, 0.7], f1_mean=0.2917, accuracy_mean=0.8, best_epoch=1, val_f1_mean=0.3,
                n_train=10, n_val=2, n_test=5, device="cpu", austack_version="0.1.0", torch_version="2.x",
                wall_s=1.5, created="2026-01-01T00:00:00+00:00")
    base.update(kw)
    return ResultRow(**base)


def test_round_trip_keeps_every_field(tmp_path):
    row = make_row(pretrained="/w/resnet18.pth", git_sha="abc123", run_dir="/runs/x")
    with ResultsDB(tmp_path / "r.sqlite") as db:
        row_id = db.insert(row)
        assert db.schema_version == SCHEMA_VERSION
        [(got_id, got)] = db.query_with_ids()
    assert got_id == row_id
    assert got == row
    assert isinstance(got.loss_options["p"], list) and got.comparable is True


def test_columns_match_the_result_row(tmp_path):
    # A new ResultRow field needs a migration; this test is the reminder.
    ResultsDB(tmp_path / "r.sqlite").close()
    cols = [r[1] for r in sqlite3.connect(tmp_path / "r.sqlite").execute("PRAGMA table_info(results)")]
    assert cols == ["id"] + [f.name for f in fields(ResultRow)]


def test_query_filters(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    db.insert_many([make_row(fold=1), make_row(fold=2, loss="wce"), make_row(dataset="disfa"),
                    make_row(comparable=False), make_row(status="error", error="boom", f1=[], accuracy=[])])
    assert len(db.query()) == 3
    assert [r.loss for r in db.query(loss="wce")] == ["wce"]
    assert [r.dataset for r in db.query(dataset="disfa")] == ["disfa"]
    assert len(db.query(include_noncomparable=True)) == 4
    assert len(db.query(backbone="resnet50")) == 0
    assert len(db.query(protocol="bp4d-3fold@v1", status=None, include_noncomparable=True)) == 5
    assert db.count() == 5 and db.count(status="error") == 1


def test_error_rows_are_stored(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    db.insert(make_row(status="error", error="RuntimeError: out of memory", f1=[], accuracy=[],
                       f1_mean=None, accuracy_mean=None))
    assert db.query() == []
    [err] = db.query(status="error")
    assert err.error == "RuntimeError: out of memory" and err.f1 == []


@pytest.mark.parametrize("bad, match", [
    (dict(status="error", error=None), "no error message"),
    (dict(status="done"), "status 'done'"),
    (dict(f1=[0.5]), "1 f1 values for 3 AUs"),
    (dict(selected_on="test"), "select on 'val'"),
])
def test_inconsistent_rows_are_refused(tmp_path, bad, match):
    db = ResultsDB(tmp_path / "r.sqlite")
    with pytest.raises(ResultsError, match=match):
        db.insert(make_row(**bad))
    assert db.count() == 0


def test_insert_many_is_all_or_nothing(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    with pytest.raises(ResultsError):
        db.insert_many([make_row(), make_row(f1=[])])
    assert db.count() == 0


def test_export_csv_loads_back(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    db.insert_many([make_row(fold=k) for k in (1, 2)] + [make_row(status="error", error="x", f1=[], accuracy=[])])
    out = db.export_csv(tmp_path / "out" / "results.csv")
    with out.open(newline="") as fh:
        recs = list(csv.DictReader(fh))
    assert [r["fold"] for r in recs] == ["1", "2", "1"]
    assert json.loads(recs[0]["f1"]) == [0.5, 0.25, 0.125]
    assert json.loads(recs[0]["loss_options"]) == {"p": [0.15, 0.15, 0.7], "tau": 0.5}
    assert recs[2]["status"] == "error" and recs[2]["pretrained"] == ""


def test_missing_file_when_not_creating(tmp_path):
    with pytest.raises(ResultsError, match="no results database at .*missing.sqlite"):
        ResultsDB(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_not_a_database(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(ResultsError, match="notes.sqlite is not a usable austack results database"):
        ResultsDB(bad)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultsDB(path).close()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(ResultsError, match="newer than this austack understands"):
        ResultsDB(path)


def test_reopening_does_not_migrate_twice(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultsDB(path).insert(make_row())
    with ResultsDB(path) as db:
        assert db.count() == 1
    versions = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def _writer(path: str, proc: int, n: int) -> None:
    db = ResultsDB(path)   # each process opens (and possibly creates) the file itself
    for i in range(n):
        db.insert(make_row(fold=proc, seed=i))
    db.close()


def test_concurrent_writers_all_land(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = mp.get_context("spawn" if "spawn" in mp.get_all_start_methods() else None)
    procs = [ctx.Process(target=_writer, args=(path, p, 25)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    rows = ResultsDB(path).query()
    assert len(rows) == 100
    assert sorted((r.fold, r.seed) for r in rows) == sorted((p, i) for p in range(4) for i in range(25))
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_connection_is_reopened_after_fork(tmp_path):
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    db = ResultsDB(tmp_path / "r.sqlite")
    db.insert(make_row())
    proc = mp.get_context("fork").Process(target=db.insert, args=(replace(make_row(), fold=2),))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert sorted(r.fold for r in db.query()) == [1, 2]


def test_two_processes_finishing_one_fold_record_it_once(tmp_path):
    """insert_once checks and inserts in one transaction: racing writers leave a single row."""
    db = tmp_path / "r.sqlite"
    ResultsDB(db).close()
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(_insert_same_fold, [str(db)] * 8)
    assert sum(inserted for _, inserted in results) == 1
    assert len({row_id for row_id, _ in results}) == 1
    with ResultsDB(db) as d:
        assert d.count() == 1


def _insert_same_fold(path: str):
    from austack.results.db import ResultsDB as DB
    r = ResultRow(dataset="bp4d", protocol="bp4d-3fold@v1", protocol_hash="h", store="s.h5", store_checksum="c",
                  fold=1, backbone="b", loss="wce", loss_options={}, seed=0, epochs=1, config={}, aus=[1],
                  f1=[0.5], accuracy=[0.5], f1_mean=0.5, accuracy_mean=0.5, config_hash="abc")
    with DB(path) as d:
        return d.insert_once(r)
