"""What every fold leaves behind: a detector that reproduces its numbers, stored predictions
that re-derive them, thresholds chosen on validation only, and label noise kept off the test."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from rich.console import Console

from austack.cli.main import cli
from austack.data import AUStoreDataset, make_loader
from austack.engine import BenchConfig, run_and_record, run_bench
from austack.engine.context import add_label_noise
from austack.fileio import sha256_file
from austack.metrics import evaluate
from austack.models.detector import load_detector
from austack.results.db import ResultsDB
from conftest import mount_tmpfs

QUIET = Console(quiet=True)


def config(store, out, loss="wce", **over) -> BenchConfig:
    base = dict(backbone="test_tiny", loss=loss, data=str(store), folds=(1,), epochs=2, batch_size=16, lr=3e-3,
                image_size=40, device="cpu", seed=0, workers=0, out_dir=str(out), linear_epochs=2,
                db=str(out / "results.sqlite"))
    return BenchConfig(**{**base, **over})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("loss", ["wce", "aunce.paper"])
def test_load_detector_reproduces_the_test_probabilities_exactly(tiny_store, tmp_path, loss):
    (row,) = run_bench(config(tiny_store, tmp_path, loss), console=QUIET)
    assert row.status == "ok", row.error
    det = load_detector(row.detector)
    assert (det.heads is None) == (loss == "wce") and det.info["regime"] in ("supervised", "linear_probe")
    assert det.aus == row.aus and det.au_names[0] == "inner brow raiser" and det.thresholds == row.thresholds
    assert det.info["store_identity"] == row.store_checksum and det.info["config_hash"] == row.config_hash
    test = AUStoreDataset(tiny_store, fold=1, split="test")
    probs = np.concatenate([det.predict(x).numpy() for x, _, _ in make_loader(test, 16)])   # the run's batch
    stored = np.load(row.predictions)
    assert np.array_equal(probs, stored["test_probs"])
    other = np.concatenate([det.predict(x).numpy() for x, _, _ in make_loader(test, 5)])
    assert np.allclose(other, probs, atol=1e-5)   # other batch sizes: float summation order only
    assert np.array_equal(stored["test_rows"], test.rows)
    assert sha256_file(row.predictions) == row.predictions_sha256
    assert evaluate(probs, test.labels, row.aus).f1_mean == pytest.approx(row.f1_mean, abs=0)


def test_a_corrupt_or_foreign_detector_file_is_a_clear_error(tmp_path):
    from austack.errors import ConfigError
    bad = tmp_path / "detector.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable detector file"):
        load_detector(bad)
    torch.save({"format": "austack-detector", "format_version": 99, "austack_version": "9.0"}, bad)
    with pytest.raises(ConfigError, match="detector format 99"):
        load_detector(bad)
    with pytest.raises(ConfigError, match="no detector file"):
        load_detector(tmp_path / "missing.pt")


def test_val_thresholds_are_chosen_on_validation_and_recorded(tiny_store, tmp_path):
    (row,) = run_bench(config(tiny_store, tmp_path, threshold="val"), console=QUIET)
    stored = np.load(row.predictions)
    from austack.metrics import choose_thresholds
    assert row.thresholds == choose_thresholds(stored["val_probs"], stored["val_labels"], row.aus)
    assert row.thresholds != [0.5] * len(row.aus)
    assert evaluate(stored["test_probs"], stored["test_labels"], row.aus, row.thresholds).f1_mean == row.f1_mean
    (plain,) = run_bench(config(tiny_store, tmp_path), console=QUIET)
    assert plain.config_hash != row.config_hash and plain.thresholds == [0.5] * len(row.aus)


def test_label_noise_flips_training_and_validation_labels_only(tiny_store):
    cfg = config(tiny_store, tiny_store.parent, label_noise=0.3)
    for split, changed in (("train", True), ("val", True), ("test", False)):
        clean, noisy = (AUStoreDataset(tiny_store, fold=1, split=split) for _ in range(2))
        if split != "test":
            add_label_noise(noisy, cfg, 1)
        known = clean.labels >= 0
        share = (clean.labels != noisy.labels)[known].mean()
        assert (0.2 < share < 0.4) if changed else share == 0
        assert np.array_equal(clean.labels < 0, noisy.labels < 0)   # unknown stays unknown


def test_rescore_and_compare_rederive_the_recorded_numbers(tiny_store, tmp_path):
    a = run_and_record(config(tiny_store, tmp_path), console=QUIET)
    b = run_and_record(config(tiny_store, tmp_path, lr=1e-3), console=QUIET)
    runner = CliRunner()
    r = runner.invoke(cli, ["rescore", str(tmp_path / a.rows[0].run_dir), "--json", "--boot", "200"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["folds"][0]["f1_mean"] == a.rows[0].f1_mean
    ci = out["interval"]["mean_f1"]
    assert ci["low"] <= ci["estimate"] == a.rows[0].f1_mean <= ci["high"]
    r = runner.invoke(cli, ["compare", a.rows[0].config_hash, b.rows[0].config_hash, "--db", a.db, "--json",
                            "--boot", "200"])
    assert r.exit_code == 0, r.output
    c = json.loads(r.output)
    assert c["difference"]["estimate"] == pytest.approx(a.rows[0].f1_mean - b.rows[0].f1_mean)
    assert 0 < c["p_value"] <= 1
    r = runner.invoke(cli, ["compare", "ffffff", b.rows[0].config_hash, "--db", a.db])
    assert r.exit_code == 1 and "no recorded result has a config hash starting 'ffffff'" in r.output


def test_a_recorded_fold_is_not_run_or_recorded_again(tiny_store, tmp_path):
    cfg = config(tiny_store, tmp_path, epochs=1)
    first = run_and_record(cfg, console=QUIET)
    again = run_and_record(cfg, console=QUIET)
    assert again.reused == [1] and again.ids == first.ids and again.rows[0].f1 == first.rows[0].f1
    with ResultsDB(cfg.db) as db:
        assert db.count() == 1


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_an_unwritable_database_stops_the_run_before_training(tiny_store, tmp_path, fault):
    """A database that cannot take a row fails before any training, not after hours of it."""
    import subprocess

    from austack.errors import AustackError
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "size=256k"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        db = disk / "results.sqlite"
        ResultsDB(db).close()
        if fault == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        else:
            subprocess.run(["dd", "if=/dev/zero", f"of={disk}/filler", "bs=4k"], capture_output=True)
        with pytest.raises(AustackError, match="results database"):
            run_and_record(config(tiny_store, tmp_path, db=str(db)), console=QUIET)
        assert not list(tmp_path.rglob("*.pt"))
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False, capture_output=True)


def test_bench_refuses_a_store_whose_labels_were_edited(tmp_path):
    """An edited label fails the store's digests: no training, one message naming the store."""
    import shutil

    import h5py

    from austack.errors import StoreError
    from conftest import write_tiny_store
    store = write_tiny_store(tmp_path / "s.h5")
    edited = tmp_path / "edited.h5"
    shutil.copy(store, edited)
    with h5py.File(edited, "r+") as f:
        labels = f["labels"]
        labels[0, 0] = 1 - labels[0, 0] if labels[0, 0] >= 0 else 1
    with pytest.raises(StoreError, match=r"edited\.h5 failed its check: .*labels"):
        run_bench(config(edited, tmp_path), console=QUIET)
    assert not list(tmp_path.rglob("*.pt"))


def test_a_temporary_file_left_by_a_killed_write_is_removed(tiny_store, tmp_path):
    (row,) = run_bench(config(tiny_store, tmp_path, epochs=1), console=QUIET)
    stale = tmp_path / row.run_dir / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    (again,) = run_bench(config(tiny_store, tmp_path, epochs=1), console=QUIET)
    assert again.status == "ok" and not stale.exists()


def test_a_row_records_its_training_noise_and_results_version(tiny_store, tmp_path):
    from austack.results.identity import RESULTS_VERSION
    from austack.results.leaderboard import aggregate

    out = run_and_record(config(tiny_store, tmp_path, epochs=1, label_noise=0.4), console=QUIET)
    [row] = ResultsDB(out.db).query()
    assert row.label_noise == 0.4 and row.provenance["results_version"] == RESULTS_VERSION
    assert row.provenance["store_label_noise"] is None                # a real-layout store, no synth noise
    [m] = aggregate([row])
    assert m.recipe["label_noise"] == 0.4 and "n0.4" in m.how
