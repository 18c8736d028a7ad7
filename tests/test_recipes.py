"""Recipes are tested data: every shipped recipe loads, and runs for one epoch on a tiny store;
the paper recipes start from published weights (cached test weights stand in here)."""
from __future__ import annotations

import pytest
import timm
import torch
from click.testing import CliRunner
from rich.console import Console

from austack.cli.main import cli
from austack.engine import BenchConfig, run_bench
from austack.models.pretrained import published_for
from austack.runs.recipes import is_paper_recipe, list_recipes, load_recipe
from austack.results.db import ResultsDB

from hf_cache import cache_timm_weights

SMALL = dict(backbone="test_tiny", folds=(1,), epochs=1, linear_epochs=1, batch_size=8, image_size=40,
             device="cpu", workers=0, embed_dim=None)
STAND_IN = "test_resnet.r160_in1k"   # a timm test model's cached weights, standing in for ImageNet's


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    cache_timm_weights(home, STAND_IN)
    return home


@pytest.mark.parametrize("name", [n for n in list_recipes() if is_paper_recipe(n)])
def test_every_paper_recipe_names_a_published_tag(name):
    settings = load_recipe(name)
    assert settings["pretrained"] == "published"
    tag = published_for(settings["backbone"]).tag
    assert tag in timm.list_pretrained(tag)


@pytest.mark.parametrize("name", list_recipes())
def test_every_shipped_recipe_runs_one_epoch(name, tiny_store, tmp_path, hf_home, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = load_recipe(name)
    weights = dict(backbone="test_resnet", pretrained=STAND_IN) if is_paper_recipe(name) else {}
    cfg = BenchConfig.from_dict({**settings, **SMALL, **weights, "data": str(tiny_store), "out_dir": str(tmp_path)})
    assert cfg.recipe == name and cfg.loss == settings["loss"]
    (row,) = run_bench(cfg, console=Console(quiet=True))
    assert row.status == "ok", row.error
    assert row.config["recipe"] == name and row.loss == settings["loss"] and row.comparable
    if weights:
        assert row.pretrained == STAND_IN and len(row.provenance["weights"]["sha256"]) == 64


def test_a_recipe_glob_runs_each_match_and_prints_the_table(tiny_store, tmp_path):
    torch.set_num_threads(1)
    db = tmp_path / "results.sqlite"
    r = CliRunner().invoke(cli, ["bench", "test_tiny", "--recipe", "table7-[AB]", "--data", str(tiny_store),
                                 "--pretrained", "none",
                                 "--fold", "1", "--epochs", "1", "--linear-epochs", "1", "--batch-size", "8",
                                 "--image-size", "40", "--device", "cpu", "--workers", "0", "--db", str(db),
                                 "--out-dir", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    rows = ResultsDB(db).query(include_noncomparable=True)
    assert sorted(r.loss for r in rows) == ["aunce.A", "aunce.B"]
    assert sorted(r.config["recipe"] for r in rows) == ["table7-A", "table7-B"]
    assert not any(x.comparable or x.pretrained for x in rows)   # random init: not beside the paper
    assert "aunce.A" in r.output and "aunce.B" in r.output   # the table's leaderboard at the end


def test_an_unmatched_recipe_glob_lists_the_recipes(tiny_store):
    r = CliRunner().invoke(cli, ["bench", "--recipe", "table9-*", "--data", str(tiny_store)])
    assert r.exit_code == 2 and "no shipped recipe matches 'table9-*'" in r.output
