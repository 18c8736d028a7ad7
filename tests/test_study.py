"""Noise and sweep studies without training: label flips, grids, parameters, figures, errors."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from austack.cli.main import cli
from austack.runs.config import BenchConfig
from austack.engine.context import add_label_noise
from austack.engine.seeds import seed_for
from austack.errors import ConfigError
from austack.studies.noise import check_grid, grid
from austack.studies.noisy_scoring import flip_labels, flip_seed
from austack.studies.plots import noise_figure, sweep_figure
from austack.studies.report import markdown_table, read_csv, write_csv
from austack.studies.sweep import build_points, parse_param


def _labels(seed=0, shape=(4000, 12)):
    rng = np.random.default_rng(seed)
    y = (rng.random(shape) < 0.3).astype(np.int8)
    y[rng.random(shape) < 0.05] = -1
    return y


@pytest.mark.parametrize("kind", ["symmetric", "missed"])
def test_test_flips_follow_the_engines_rule(kind):
    # the noisy test labels must be the same kind of noise the training labels got
    y = _labels()
    cfg = BenchConfig(label_noise=0.3, label_noise_kind=kind, seed=4)
    ds = SimpleNamespace(labels=y.copy(), split="train")
    add_label_noise(ds, cfg, 2)
    ours = flip_labels(y, 0.3, kind, seed_for(4, "noise", fold=2, epoch=0))
    assert np.array_equal(ours, ds.labels)
    assert np.array_equal(y, _labels())                       # the input is never changed


def test_flips_keep_unknown_labels_and_hit_the_level():
    y = _labels()
    sym = flip_labels(y, 0.2, "symmetric", 1)
    assert np.array_equal(sym == -1, y == -1)
    known = y >= 0
    assert abs((sym != y)[known].mean() - 0.2) < 0.02
    missed = flip_labels(y, 0.4, "missed", 1)
    assert not ((y == 0) & (missed == 1)).any()                # a missed AU never appears
    assert abs((missed != y)[y == 1].mean() - 0.4) < 0.03
    assert np.array_equal(flip_labels(y, 0.0, "missed", 1), y)
    assert np.array_equal(flip_labels(y, 0.2, "symmetric", 1), sym)   # seeded
    assert flip_seed(0, 1) != flip_seed(0, 2) != flip_seed(1, 2)
    with pytest.raises(ValueError, match="unknown label noise kind"):
        flip_labels(y, 0.2, "asymmetric", 1)


def test_grid_runs_level_zero_once_per_loss():
    g = grid((0.0, 0.2), ("wce", "aunce.paper"), ("symmetric", "missed"))
    assert [(s.kind, s.level, s.loss) for s in g] == [
        ("symmetric", 0.0, "wce"), ("symmetric", 0.0, "aunce.paper"),
        ("symmetric", 0.2, "wce"), ("symmetric", 0.2, "aunce.paper"),
        ("missed", 0.2, "wce"), ("missed", 0.2, "aunce.paper")]


@pytest.mark.parametrize("levels, losses, kinds, match", [
    ((0.0, 0.7), ("wce",), ("symmetric",), "outside"),
    ((0.2,), ("wcee",), ("symmetric",), "did you mean 'wce'"),
    ((0.2,), ("wce",), ("symetric",), "did you mean 'symmetric'"),
])
def test_bad_grids_are_refused_before_anything_runs(levels, losses, kinds, match):
    with pytest.raises(ConfigError, match=match):
        check_grid(levels, losses, kinds, 1)


def test_cli_refuses_a_bad_loss_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "study"
    res = CliRunner().invoke(cli, ["study", "noise", "--quick", "--out", str(out), "--losses", "wce,aunc.paper"])
    assert res.exit_code == 2 and "did you mean 'aunce.paper'" in res.output and "Traceback" not in res.output
    assert not out.exists()
    res = CliRunner().invoke(cli, ["study", "noise", "--out", str(out), "--levels", "0,a"])
    assert res.exit_code == 2 and "comma-separated list of numbers" in " ".join(res.output.split())  # wrapped


def test_params_are_typed_and_checked():
    p = parse_param("loss.beta_neg=0.2, 0.4,0.8")
    assert p.key == "loss.beta_neg" and p.values == (0.2, 0.4, 0.8) and p.is_loss_option
    assert parse_param("lr_schedule=constant,cosine").values == ("constant", "cosine")
    assert parse_param("lr=1e-3,3").values == (1e-3, 3) and parse_param("x=true").values == (True,)
    for bad, match in (("beta", "expected KEY=V1"), ("lr=", "expected KEY=V1"), ("lr=1,1", "repeats")):
        with pytest.raises(ConfigError, match=match):
            parse_param(bad)


def test_points_each_get_their_own_settings():
    recipe = {"backbone": "test_tiny", "loss": "aunce.paper", "loss_options": {"tau": 0.5}}
    points = build_points(recipe, [parse_param("loss.beta_neg=0.2,0.8"), parse_param("lr=1e-3,3e-3")],
                          {"data": "x.h5"})
    assert len(points) == 4
    assert [(p.cfg.loss_options["beta_neg"], p.cfg.lr) for p in points] == [
        (0.2, 1e-3), (0.2, 3e-3), (0.8, 1e-3), (0.8, 3e-3)]
    assert all(p.cfg.loss_options["tau"] == 0.5 for p in points)    # the recipe's options stay
    assert recipe["loss_options"] == {"tau": 0.5}                     # and are not changed in place


@pytest.mark.parametrize("param, match", [
    ("loss.beta_ng=0.2,0.4", "did you mean 'beta_neg'"),
    ("lrr=0.1,0.2", "did you mean 'lr'"),
    ("seed=0,1", "--seeds"),
    ("epochs=0,1", "epochs must be at least 1"),
    ("loss.beta_neg=0.2,-5", "must be positive"),
])
def test_bad_params_fail_before_training(param, match):
    recipe = {"backbone": "test_tiny", "loss": "aunce.paper"}
    with pytest.raises(ConfigError, match=match):
        build_points(recipe, [parse_param(param)], {"data": "x.h5"})


def test_cli_sweep_refuses_an_unknown_recipe(tmp_path):
    res = CliRunner().invoke(cli, ["study", "sweep", "demo-wc", "--data", "x.h5", "--out", str(tmp_path / "s"),
                                   "--param", "lr=1e-3,3e-3"])
    assert res.exit_code == 2 and "did you mean 'demo-wce'" in res.output and "Traceback" not in res.output


def _summary(kinds=("symmetric", "missed")):
    out = []
    for kind in kinds:
        for level in (0.0, 0.2, 0.4):
            for j, loss in enumerate(("wce", "aunce.paper")):
                f1 = 60 - 40 * level * (1 + j)
                out.append({"kind": kind, "level": level, "loss": loss, "f1": f1, "f1_low": f1 - 5, "f1_high": f1 + 5})
    return out


def test_figures_are_written_as_readable_png_and_svg(tmp_path):
    import matplotlib.image as mpimg

    files = noise_figure(_summary(), tmp_path / "noise.png", title="t")
    assert [f.name for f in files] == ["noise.png", "noise.svg"]
    h, w, _ = mpimg.imread(files[0]).shape
    assert w > 800 and h > 400                                         # two panels, 150 dpi
    assert files[1].read_text().lstrip().startswith("<?xml")
    records = [{"tau": t, "f1": 50 + i, "f1_low": 45 + i, "f1_high": 55 + i, "o": "p=x"}
               for i, t in enumerate(("a", "b", "c"))]                  # categorical x
    files = sweep_figure(records, "tau", "o", tmp_path / "sweep.png", title="t")
    assert mpimg.imread(files[0]).shape[0] > 300


def test_csv_and_markdown_tables(tmp_path):
    path = write_csv(tmp_path / "r.csv", [{"a": 1.23456789, "b": None}, {"a": "x", "b": 2}], ("a", "b"))
    assert read_csv(path) == [{"a": "1.23457", "b": ""}, {"a": "x", "b": "2"}]
    assert markdown_table(("a", "b"), [(1, 2)]).splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_a_study_never_writes_into_a_foreign_folder(tmp_path):
    from austack.studies.data import ensure_store
    from austack.studies.noise import QUICK

    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not empty and holds no study.json"):
        ensure_store(tmp_path, QUICK.data, "noise-quick")
    assert (tmp_path / "mine.txt").read_text() == "keep"
