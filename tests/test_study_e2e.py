"""Studies and plots with the real trainer: a sweep on the tiny test store, every `austack
plot` figure from its runs, and `austack study noise --quick` as CI runs it."""
from __future__ import annotations

import matplotlib.image as mpimg
import pytest
import yaml
from click.testing import CliRunner

from austack.cli.main import cli
from austack.results.db import ResultsDB
from austack.studies.report import read_csv

from conftest import write_tiny_store


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    store = write_tiny_store(tmp / "tiny.h5")
    recipe = tmp / "tiny-wce.yaml"
    recipe.write_text(yaml.safe_dump({"backbone": "test_tiny", "loss": "wce", "epochs": 1, "batch_size": 16,
                                      "image_size": 40, "device": "cpu", "workers": 0}))
    args = ["study", "sweep", str(recipe), "--data", str(store), "--out", str(tmp / "s"), "--folds", "1",
            "--param", "lr=1e-3,3e-3", "--threads", "1"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    return tmp, res, args


def test_sweep_records_one_config_hash_per_point(swept):
    tmp, res, args = swept
    out = tmp / "s"
    summary = read_csv(out / "summary.csv")
    assert [float(r["lr"]) for r in summary] == [1e-3, 3e-3]
    assert len({r["config_hash"] for r in summary}) == 2
    for r in summary:
        assert 0 <= float(r["f1_low"]) <= float(r["f1_high"]) <= 100 and r["folds"] == "1"
    with ResultsDB(out / "results.sqlite", create=False) as db:
        rows = db.query(include_noncomparable=True)
    assert sorted(r.config_hash for r in rows) == sorted(r["config_hash"] for r in summary)
    assert mpimg.imread(out / "sweep-lr.png").shape[0] > 300
    readme = (out / "README.md").read_text()
    assert all(r["config_hash"] in readme for r in summary) and "## Results" in readme
    again = CliRunner().invoke(cli, args)          # a rerun reuses every recorded fold
    assert again.exit_code == 0
    with ResultsDB(out / "results.sqlite", create=False) as db:
        assert db.count() == 2


def test_plots_from_the_database_and_run_dirs(swept):
    tmp, _, _ = swept
    out = tmp / "s"
    summary = read_csv(out / "summary.csv")
    run_dir = next((out / "runs").glob(f"*{summary[0]['config_hash']}*"))
    db = str(out / "results.sqlite")
    runner = CliRunner()
    res = runner.invoke(cli, ["plot", "bars", summary[0]["config_hash"], str(run_dir), "--db", db, "--boot", "200",
                              "--out", str(tmp / "bars.png")])
    assert res.exit_code == 0, res.output         # the tiny store is not synthetic: AUNCE's row is drawn
    assert (tmp / "bars.svg").is_file() and mpimg.imread(tmp / "bars.png").shape[1] > 600
    res = runner.invoke(cli, ["plot", "bars", summary[0]["config_hash"], "--db", db, "--published", "AUNC",
                              "--out", str(tmp / "x.png")])
    assert res.exit_code != 0 and "did you mean 'AUNCE'" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["plot", "pr", str(run_dir), "--out", str(tmp / "pr.png")])
    assert res.exit_code == 0, res.output and mpimg.imread(tmp / "pr.png").shape[0] > 300
    res = runner.invoke(cli, ["plot", "tsne", str(run_dir), "--frames", "40", "--out", str(tmp / "tsne.png")])
    assert res.exit_code == 0, res.output
    assert "(tsne)" in res.output and mpimg.imread(tmp / "tsne.png").shape[0] > 300
    assert "projecting" in res.output and res.output.count("done in") == 2     # it says what it does
    res = runner.invoke(cli, ["plot", "tsne", str(tmp), "--out", str(tmp / "t.png")])
    assert res.exit_code == 2 and "no detector.pt" in res.output


@pytest.mark.slow
def test_quick_noise_study(tmp_path):
    out = tmp_path / "noise"
    figure = tmp_path / "img" / "noise-quick.png"
    res = CliRunner().invoke(cli, ["study", "noise", "--quick", "--out", str(out), "--figure", str(figure)])
    assert res.exit_code == 0, res.output
    results, summary = read_csv(out / "results.csv"), read_csv(out / "summary.csv")
    # symmetric 0, 0.2, 0.4 and missed 0.2, 0.4, for both losses, on 3 folds
    assert len(summary) == 10 and len(results) == 30 and all(r["status"] == "ok" for r in results)
    for r in summary:
        assert 0 <= float(r["f1_low"]) <= float(r["f1_high"]) <= 100
        assert 0 <= float(r["f1_noisy_low"]) <= float(r["f1_noisy_high"]) <= 100
    clean = [r for r in summary if float(r["level"]) == 0]
    assert all(r["f1"] == r["f1_noisy"] for r in clean)            # no flips: the two scores agree
    assert any(r["f1"] != r["f1_noisy"] for r in summary if float(r["level"]) > 0)
    drops = read_csv(out / "drops.csv")      # per noisy setting a drop; per level and kind one difference
    assert len([d for d in drops if d["what"] == "drop"]) == 8 and len(drops) == 12
    assert all(float(d["low"]) <= float(d["high"]) for d in drops)
    assert mpimg.imread(figure).shape[1] > 800 and (out / "noise.svg").is_file()
    readme = (out / "README.md").read_text()
    assert all(r["config_hash"] in readme for r in summary) and "machine:" in readme
