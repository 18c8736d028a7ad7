"""Recipes are tested data: every shipped recipe loads, and runs for one epoch on a tiny store."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from rich.console import Console

from austack.cli.main import cli
from austack.engine import BenchConfig, run_bench
from austack.runs.recipes import list_recipes, load_recipe
from austack.results.db import ResultsDB

SMALL = dict(backbone="test_tiny", folds=(1,), epochs=1, linear_epochs=1, batch_size=8, image_size=40,
             device="cpu", workers=0)


@pytest.mark.parametrize("name", list_recipes())
def test_every_shipped_recipe_runs_one_epoch(name, tiny_store, tmp_path):
    torch.set_num_threads(1)
    settings = load_recipe(name)
    cfg = BenchConfig.from_dict({**settings, **SMALL, "data": str(tiny_store), "out_dir": str(tmp_path)})
    assert cfg.recipe == name and cfg.loss == settings["loss"]
    (row,) = run_bench(cfg, console=Console(quiet=True))
    assert row.status == "ok", row.error
    assert row.config["recipe"] == name and row.loss == settings["loss"]


def test_a_recipe_glob_runs_each_match_and_prints_the_table(tiny_store, tmp_path):
    torch.set_num_threads(1)
    db = tmp_path / "results.sqlite"
    r = CliRunner().invoke(cli, ["bench", "test_tiny", "--recipe", "table7-[AB]", "--data", str(tiny_store),
                                 "--fold", "1", "--epochs", "1", "--linear-epochs", "1", "--batch-size", "8",
                                 "--image-size", "40", "--device", "cpu", "--workers", "0", "--db", str(db),
                                 "--out-dir", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    rows = ResultsDB(db).query()
    assert sorted(r.loss for r in rows) == ["aunce.A", "aunce.B"]
    assert sorted(r.config["recipe"] for r in rows) == ["table7-A", "table7-B"]
    assert "aunce.A" in r.output and "aunce.B" in r.output   # the table's leaderboard at the end


def test_an_unmatched_recipe_glob_lists_the_recipes(tiny_store):
    r = CliRunner().invoke(cli, ["bench", "--recipe", "table9-*", "--data", str(tiny_store)])
    assert r.exit_code == 2 and "no shipped recipe matches 'table9-*'" in r.output
