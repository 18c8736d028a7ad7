"""`austack bench` through click's CliRunner: help, a tiny run recorded in the DB, bad names."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from austack.cli.main import cli
from austack.results.db import ResultsDB


@pytest.fixture
def invoke():
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, [str(a) for a in args])


def test_help(invoke):
    r = invoke("bench", "--help")
    assert r.exit_code == 0
    for flag in ("--data", "--fold", "--recipe", "--loss-opt", "--limit-train", "--linear-epochs",
                 "--threshold", "--crop-fraction"):
        assert flag in r.output
    assert "[default: 20]" in r.output and "[default: 64]" in r.output   # defaults are shown
    assert max(map(len, r.output.splitlines())) <= 80


def test_every_config_field_reaches_the_command_line():
    from dataclasses import fields

    from austack.cli.bench import cli as bench
    from austack.runs.config import BenchConfig
    params = {p.name for p in bench.params}
    # the fields not generated from their metadata have a hand-made form
    by_hand = {"backbone": "backbone", "loss": "loss", "loss_options": "loss_opts", "recipe": "recipe"}
    for f in fields(BenchConfig):
        assert (f.name if f.metadata["cli"] else by_hand[f.name]) in params, f.name


def test_tiny_run_prints_config_and_table_and_records_a_row(invoke, tiny_store, tmp_path):
    torch.set_num_threads(1)
    db = tmp_path / "results.sqlite"
    r = invoke("bench", "test_tiny", "wce", "--data", tiny_store, "--fold", "1", "--epochs", "1",
               "--batch-size", "16", "--lr", "3e-3", "--image-size", "40", "--device", "cpu", "--workers", "0",
               "--db", db, "--out-dir", tmp_path / "runs")
    assert r.exit_code == 0, r.output
    assert r.output.index("resolved config") < r.output.index("test F1")
    assert "AU24" in r.output and "Avg. F1" in r.output
    rows = ResultsDB(db).query()
    assert len(rows) == 1 and rows[0].backbone == "test_tiny" and rows[0].config["epochs"] == 1


def test_recipe_gives_defaults_and_flags_override(tmp_path):
    from austack.cli.bench import build_config
    recipe = tmp_path / "r.yaml"
    recipe.write_text("title: t\nbackbone: resnet18\nloss: aunce.paper\nepochs: 60\nlr: 1.0e-5\n"
                      "loss_options: {tau: 0.5}\n")
    none = dict(data="x.h5", folds=None, epochs=None, batch_size=None, lr=2e-4, image_size=None, device=None,
                seed=None, workers=None, pretrained=None, db=None, out_dir=None, linear_epochs=None,
                limit_train=None)
    cfg = build_config(None, None, none, {"p": [0.2, 0.2, 0.6]}, str(recipe))
    assert (cfg.backbone, cfg.loss, cfg.epochs, cfg.lr, cfg.recipe) == ("resnet18", "aunce.paper", 60, 2e-4, "r")
    assert cfg.loss_options == {"tau": 0.5, "p": [0.2, 0.2, 0.6]}


@pytest.mark.parametrize("args, message", [
    (("test_tiny", "aunce.papr"), "unknown loss 'aunce.papr'; did you mean 'aunce.paper'"),
    (("resnet81", "wce"), "unknown encoder 'resnet81'"),
])
def test_unknown_names_exit_2_without_traceback(invoke, tiny_store, tmp_path, args, message):
    r = invoke("bench", *args, "--data", tiny_store, "--device", "cpu", "--out-dir", tmp_path)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_unknown_recipe_lists_recipes(invoke, tiny_store):
    r = invoke("bench", "--recipe", "demo-wcee", "--data", tiny_store)
    assert r.exit_code == 2 and "did you mean 'demo-wce'" in r.output


def test_augment_policy_is_chosen_by_the_loss_or_the_flag(invoke, tiny_store, tmp_path):
    torch.set_num_threads(1)
    db = tmp_path / "results.sqlite"
    common = ["--data", tiny_store, "--fold", "1", "--epochs", "1", "--batch-size", "16", "--image-size", "40",
              "--device", "cpu", "--workers", "0", "--db", db, "--out-dir", tmp_path / "runs"]
    r = invoke("bench", "test_tiny", "wce", "--augment", "simclr", "--lr-schedule", "cosine", *common)
    assert r.exit_code == 0, r.output
    assert "augment: simclr" in r.output and "lr_schedule: cosine" in r.output
    assert ResultsDB(db).query()[0].config["augment"] == "simclr"
    r = invoke("bench", "test_tiny", "wce", "--augment", "colour", *common)
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_policies():
    from austack.data import POLICIES, BatchAugment
    from austack.errors import ConfigError
    basic = BatchAugment.from_policy("basic", 32, 1)
    from austack.runs.config import AUGMENT_POLICIES
    assert basic.jitter_p == basic.gray_p == basic.blur_p == 0.0 and set(POLICIES) == set(AUGMENT_POLICIES)
    assert BatchAugment.from_policy("simclr", 32, 2).blur_p == 0.5
    with pytest.raises(ConfigError, match="unknown augmentation policy 'x'"):
        BatchAugment.from_policy("x", 32, 1)


def test_linear_evaluation_compile_and_clip_flags_reach_the_config(invoke, tiny_store, tmp_path):
    torch.set_num_threads(1)
    db = tmp_path / "results.sqlite"
    r = invoke("bench", "test_tiny", "aunce.paper", "--data", tiny_store, "--fold", "1", "--epochs", "1",
               "--batch-size", "16", "--image-size", "40", "--device", "cpu", "--workers", "0", "--db", db,
               "--out-dir", tmp_path / "runs", "--linear-epochs", "1", "--linear-lr", "0.03", "--linear-augment",
               "--no-compile", "--grad-clip", "2.5")
    assert r.exit_code == 0, r.output
    config = ResultsDB(db).query()[0].config
    assert (config["linear_lr"], config["linear_augment"], config["compile"]) == (0.03, True, False)
    assert config["grad_clip"] == 2.5
    r = invoke("bench", "test_tiny", "aunce.paper", "--data", tiny_store, "--linear-lr", "0")
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_threads_are_recorded_not_hashed_and_restored(invoke, tiny_store, tmp_path):
    before = torch.get_num_threads()
    db = tmp_path / "results.sqlite"
    common = ("test_tiny", "wce", "--data", tiny_store, "--fold", "1", "--epochs", "1", "--batch-size", "16",
              "--image-size", "40", "--device", "cpu", "--workers", "0", "--db", db, "--out-dir", tmp_path / "runs")
    r = invoke("bench", *common, "--threads", "1")
    assert r.exit_code == 0, r.output
    assert torch.get_num_threads() == before                   # the run's setting does not leak
    (row,) = ResultsDB(db).query()
    assert row.config["threads"] == 1
    r = invoke("bench", *common, "--threads", "2")              # same hash: the fold is reused, not rerun
    assert r.exit_code == 0 and len(ResultsDB(db).query()) == 1, r.output
    assert invoke("bench", *common, "--threads", "0").exit_code == 2


def test_the_noise_study_records_its_threads_outside_the_hash(tmp_path):
    from austack.studies.noise import QUICK, Setting, bench_config

    s = Setting("symmetric", 0.2, "wce")
    one = bench_config(s, QUICK, tmp_path / "s.h5", tmp_path, 0, "cpu", threads=1)
    default = bench_config(s, QUICK, tmp_path / "s.h5", tmp_path, 0, "cpu")
    assert one.to_dict()["threads"] == 1 and default.threads is None
    assert one.hashed_settings() == default.hashed_settings() and "threads" not in one.hashed_settings()
