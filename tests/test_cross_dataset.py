"""Cross-dataset evaluation (docs/cross-dataset.md): train on a tiny synthetic BP4D store, score
on a tiny synthetic DISFA store over the AUs both label, through `austack bench --test-data`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from austack.cli.main import cli
from austack.engine import BenchConfig
from austack.engine.cross import MIN_SHARED_AUS, check_shared
from austack.engine.preflight import open_run
from austack.runs.rundir import load_predictions
from austack.errors import ConfigError, ResultsError
from austack.metrics import evaluate
from austack.protocols import load_protocol
from austack.results.db import ResultsDB
from austack.results.rescore import compare, interval_for_rows, rescore
from austack.store import open_store

from _disfa_store import write_tiny_disfa_store

SHARED = [1, 2, 4, 6, 12]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def disfa_store(tmp_path_factory):
    return write_tiny_disfa_store(tmp_path_factory.mktemp("disfa") / "disfa.h5")


def bench_args(source, target, tmp, *extra):
    return ["bench", "test_tiny", "wce", "--data", str(source), "--test-data", str(target), "--fold", "1",
            "--epochs", "1", "--batch-size", "16", "--lr", "3e-3", "--image-size", "40", "--device", "cpu",
            "--workers", "0", "--db", str(tmp / "results.sqlite"), "--out-dir", str(tmp / "runs"), *extra]


@pytest.fixture(scope="module")
def recorded(tiny_store, disfa_store, tmp_path_factory):
    """One BP4D-trained fold scored on the whole DISFA store, then on DISFA fold 1's test part
    (the fold is reused, not trained again), and a second config for `compare`."""
    tmp = tmp_path_factory.mktemp("cross")
    runner = CliRunner()
    outputs = [runner.invoke(cli, bench_args(tiny_store, disfa_store, tmp, *extra))
               for extra in ((), ("--test-fold", "1"), ("--lr", "1e-3"))]
    for r in outputs:
        assert r.exit_code == 0, r.output
    with ResultsDB(tmp / "results.sqlite") as db:
        rows = db.query_with_ids()
    return tmp, rows, outputs


def cross_rows(rows, split="all"):
    return [(i, r) for i, r in rows if r.cross and r.test_split == split]


def test_cross_row_scores_the_shared_aus_on_the_target_store(recorded, tiny_store, disfa_store):
    tmp, rows, outputs = recorded
    source = [r for _, r in rows if not r.cross]
    assert len(source) == 2 and all(r.aus == list(load_protocol("bp4d").aus) for r in source)
    [(_, row)] = cross_rows(rows)[:1]
    assert row.aus == SHARED and row.status == "ok"
    with open_store(disfa_store) as target, open_store(tiny_store) as src:
        assert (row.dataset, row.store_checksum, row.protocol) == ("disfa", target.identity, "disfa-3fold@v1")
        assert (row.source_dataset, row.source_store_checksum, row.source_protocol) == ("bp4d", src.identity,
                                                                                        "bp4d-3fold@v1")
        p = load_predictions(row.predictions)
        assert p["aus"].tolist() == SHARED and len(p["test_rows"]) == len(target) == row.n_test
        columns = [target.aus.index(a) for a in SHARED]
        np.testing.assert_array_equal(p["test_labels"], target.labels[p["test_rows"]][:, columns])
        np.testing.assert_array_equal(p["test_subjects"], target.subjects[p["test_rows"]])
        # the labels are DISFA's own rule: intensity >= 2
        np.testing.assert_array_equal(p["test_labels"], (target.intensities[p["test_rows"]][:, columns] >= 2))
    assert row.detector == source[0].detector and row.thresholds == [0.5] * 5


def test_leaderboard_f1_equals_f1_recomputed_from_stored_predictions(recorded):
    tmp, rows, _ = recorded
    [(_, row)] = [x for x in cross_rows(rows) if x[1].config["lr"] == 3e-3]
    p = load_predictions(row.predictions)
    f1 = evaluate(p["test_probs"], p["test_labels"], SHARED, p["thresholds"].tolist()).f1
    r = CliRunner().invoke(cli, ["leaderboard", "--db", str(tmp / "results.sqlite"), "--format", "json",
                                 "--dataset", "disfa"])
    assert r.exit_code == 0, r.output
    boards = {b["heading"]: b for b in json.loads(r.output)["boards"]}
    board = boards["bp4d -> disfa"]
    assert board["aus"] == SHARED and board["source"] == "bp4d"
    [measured] = [x for x in board["rows"] if x["kind"] == "measured" and x["config_hash"] == row.config_hash
                  and x["test_split"] == "all"]
    assert measured["f1"] == pytest.approx([round(100 * v, 4) for v in f1], abs=1e-4)
    assert measured["ci"]["n_subjects"] == 6     # the DISFA store's subjects
    published = {x["method"]: x["avg"] for x in board["rows"] if x["kind"] == "published"}
    assert published == {"FG-Net": 54.4, "AUFormer": 43.6, "UDCT": 44.5}
    assert "disfa" in boards and "bp4d" not in boards   # the within-DISFA board; BP4D's is not asked for


def test_test_fold_scores_the_target_protocols_test_subjects_without_retraining(recorded, disfa_store):
    tmp, rows, outputs = recorded
    assert "not run again" in outputs[1].output
    [(_, row)] = cross_rows(rows, "fold1")
    with open_store(disfa_store) as target:
        wanted = target.get_subset(load_protocol("disfa-3fold@v1"), fold=1, split="test")
        assert set(target.subjects[wanted]) == {"SN003", "SN029"}
    np.testing.assert_array_equal(load_predictions(row.predictions)["test_rows"], wanted)


def test_rescore_interval_and_compare_work_on_cross_rows(recorded):
    tmp, rows, _ = recorded
    [(_, a), (_, b)] = cross_rows(rows)
    again = rescore(a.run_dir, n_boot=200)
    assert again.aus == SHARED and again.folds[0].f1 == pytest.approx(a.f1)
    assert interval_for_rows([a], n_boot=200).n_subjects == 6
    db_path = str(tmp / "results.sqlite")
    with ResultsDB(db_path) as db:
        with pytest.raises(ResultsError, match="pick one with --on"):   # within BP4D and on DISFA
            compare(db, a.config_hash, b.config_hash, n_boot=200)
    runner = CliRunner()
    r = runner.invoke(cli, ["compare", a.config_hash, b.config_hash, "--on", "bp4d->disfa:all", "--db", db_path,
                            "--boot", "200", "--json"])
    assert r.exit_code == 0, r.output
    c = json.loads(r.output)
    assert c["n_subjects"] == 6 and c["a_mean_f1"] == pytest.approx(a.f1_mean)
    r = runner.invoke(cli, ["rescore", a.run_dir, "--boot", "200", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["interval"]["n_subjects"] == 6
    r = runner.invoke(cli, ["leaderboard", "--db", db_path, "--dataset", "bp4d->disfa", "--format", "json"])
    assert [b["heading"] for b in json.loads(r.output)["boards"]] == ["bp4d -> disfa"]


def test_too_few_shared_aus_is_one_error_naming_the_target():
    with pytest.raises(ConfigError, match="shares no AU"):
        check_shared("bp4d", (1, 2), "x.h5", "other", (9, 25))
    with pytest.raises(ConfigError, match=f"at least {MIN_SHARED_AUS}"):
        check_shared("bp4d", (1, 2, 4), "x.h5", "other", (1, 2, 25))
    assert check_shared("bp4d", load_protocol("bp4d").aus, "d.h5", "disfa", load_protocol("disfa").aus) == SHARED


@pytest.mark.parametrize("over, message", [
    (dict(test_fold=1), "give the target with --test-data"),
    (dict(test_data=("same",)), "same store as"),
    (dict(test_data=("disfa",), test_fold=4), "no fold 4"),
])
def test_bad_targets_fail_before_training(tiny_store, disfa_store, tmp_path, over, message):
    paths = {"same": str(tiny_store), "disfa": str(disfa_store)}
    over = {**over, "test_data": tuple(paths[p] for p in over.get("test_data", ()))}
    cfg = BenchConfig(backbone="test_tiny", loss="wce", data=str(tiny_store), folds=(1,), batch_size=16,
                      device="cpu", out_dir=str(tmp_path), **over)
    with pytest.raises(Exception, match=message):
        open_run(cfg)
    assert not any(tmp_path.iterdir())   # nothing trained, nothing written


def test_a_target_sharing_no_au_fails_before_training(tiny_store, tmp_path):
    """A DISFA store on a protocol of its own that scores only AUs BP4D does not label."""
    yaml_text = Path(load_protocol("disfa-3fold@v1").path).read_text()
    own = tmp_path / "disfa-few@v1.yaml"
    own.write_text(yaml_text.replace("name: disfa-3fold", "name: disfa-few").replace(
        "aus: [1, 2, 4, 6, 9, 12, 25, 26]", "aus: [9, 25, 26]"))
    target = write_tiny_disfa_store(tmp_path / "few.h5", per_subject=2, protocol=str(own))
    r = CliRunner().invoke(cli, bench_args(tiny_store, target, tmp_path / "run"))
    assert r.exit_code != 0 and isinstance(r.exception, SystemExit)
    assert not (tmp_path / "run" / "runs").exists() and not (tmp_path / "run" / "results.sqlite").exists()
    cfg = BenchConfig(backbone="test_tiny", loss="wce", data=str(tiny_store), test_data=(str(target),),
                      batch_size=16, device="cpu", out_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="shares no AU"):
        open_run(cfg)


def test_the_options_are_generated_from_the_config():
    from austack.cli.bench import cli as bench

    options = {p.name: p for p in bench.params}
    assert options["test_data"].multiple and options["test_fold"].type.min == 1
    cfg = BenchConfig.from_dict({"test_data": "disfa.h5", "test_fold": 2})   # a recipe may give one path
    assert cfg.test_data == ("disfa.h5",) and "test_data" not in cfg.hashed_settings()


def test_run_bench_returns_each_folds_cross_rows_after_it(tiny_store, disfa_store, tmp_path):
    from rich.console import Console

    from austack.engine import run_bench

    cfg = BenchConfig(backbone="test_tiny", loss="wce", data=str(tiny_store), test_data=(str(disfa_store),),
                      test_fold=2, folds=(1,), epochs=1, batch_size=16, image_size=40, device="cpu", workers=0,
                      out_dir=str(tmp_path))
    source, cross = run_bench(cfg, console=Console(quiet=True))
    assert not source.cross and cross.cross and cross.status == "ok", cross.error
    assert (cross.aus, cross.test_split, cross.fold) == (SHARED, "fold2", 1)


def test_folds_tested_on_the_same_subjects_share_each_bootstrap_draw():
    """Three source folds scored on one target are the same people: the interval of three
    identical folds is the interval of one (independent draws per fold would narrow it)."""
    from austack.results.stats import FoldCounts, bootstrap

    rng = np.random.default_rng(0)
    counts = rng.integers(0, 20, size=(1, 6, 5, 3))
    subjects = np.array([f"SN00{i}" for i in range(6)])
    one = bootstrap([FoldCounts(1, subjects, counts)], SHARED, n_boot=300)
    three = bootstrap([FoldCounts(k, subjects, counts) for k in (1, 2, 3)], SHARED, n_boot=300)
    assert three.n_subjects == one.n_subjects == 6
    assert (three.mean_f1.low, three.mean_f1.high) == pytest.approx((one.mean_f1.low, one.mean_f1.high))
