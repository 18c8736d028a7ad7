"""A new loss with its own options needs no change to the engine or the CLI.

The toy loss below mixes WCE on the probabilities with AUNCE on the embeddings of two views
(a joint loss neither built-in regime branch knows), declares its own option `alpha`, and is
trained and scored through `austack bench --loss-opt` like any shipped loss.
"""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from austack.cli.main import cli
from austack.errors import ConfigError
from austack.losses import AULoss, LOSSES, create_loss, register_loss
from austack.losses.aunce import AUNCELoss
from austack.losses.wce import WCELoss
from austack.results.db import ResultsDB


class JointLoss(AULoss):
    views = 2
    global_batch = True
    regime = "supervised"

    def __init__(self, alpha: float = 0.5, tau: float = 0.5):
        super().__init__()
        if not 0 <= alpha <= 1:
            raise ConfigError(f"alpha must lie in [0, 1], got {alpha}")
        self.alpha = alpha
        self.wce, self.aunce = WCELoss(), AUNCELoss(tau=tau)

    def set_rates(self, rates, *, aus=None, min_rate=None):
        self.wce.set_rates(rates, aus=aus)
        self.aunce.set_rates(rates, aus=aus)

    def reseed(self, seed):
        self.aunce.reseed(seed)

    def batch_loss(self, outs, labels):
        return (self.alpha * self.wce.batch_loss(outs, labels)
                + (1 - self.alpha) * self.aunce.batch_loss(outs, labels))


@pytest.fixture(scope="module", autouse=True)
def toy_loss():
    register_loss("toy.joint")(JointLoss)
    yield
    del LOSSES._entries["toy.joint"]


def test_the_toy_loss_trains_through_the_cli_with_its_own_option(tiny_store, tmp_path):
    torch.set_num_threads(1)
    db = tmp_path / "results.sqlite"
    args = ["bench", "test_tiny", "toy.joint", "--data", str(tiny_store), "--fold", "1", "--epochs", "1",
            "--batch-size", "8", "--image-size", "40", "--device", "cpu", "--workers", "0", "--db", str(db),
            "--out-dir", str(tmp_path / "runs")]
    r = CliRunner().invoke(cli, [*args, "--loss-opt", "alpha=0.25"])
    assert r.exit_code == 0, r.output
    (row,) = ResultsDB(db).query()
    assert row.loss == "toy.joint" and row.loss_options == {"alpha": 0.25} and row.best_epoch == 1
    # the option is checked against the loss's own signature, before any training
    r = CliRunner().invoke(cli, [*args, "--loss-opt", "beta=1"])
    assert r.exit_code == 2 and "loss 'toy.joint' has no option(s) 'beta'; it takes: alpha, tau" in r.output
    r = CliRunner().invoke(cli, [*args, "--loss-opt", "alpha=2"])
    assert r.exit_code == 2 and "alpha must lie in [0, 1], got 2" in r.output


def test_loss_options_parse_as_yaml_values():
    from austack.cli.bench import _loss_opts
    assert _loss_opts(None, None, ("tau=0.5", "p=0.15,0.15,0.7", "reweight=false", "positive=max",
                                   "beta_pos=1e-1")) == {
        "tau": 0.5, "p": [0.15, 0.15, 0.7], "reweight": False, "positive": "max", "beta_pos": 0.1}
    assert create_loss("aunce.paper", **_loss_opts(None, None, ("p=[0.2, 0.2, 0.6]",))).settings.p == (0.2, 0.2, 0.6)


def test_list_losses_shows_their_options():
    r = CliRunner().invoke(cli, ["list", "losses", "aunce.paper", "--options"])
    assert r.exit_code == 0 and "options: tau, p, beta_pos, beta_neg" in r.output
    assert max(map(len, r.output.splitlines())) <= 80


def test_an_option_value_of_the_wrong_kind_is_one_line(tiny_store, tmp_path):
    r = CliRunner().invoke(cli, ["bench", "test_tiny", "aunce.paper", "--data", str(tiny_store), "--loss-opt",
                                 "tau=abc", "--device", "cpu", "--out-dir", str(tmp_path)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "loss 'aunce.paper' cannot use the options tau='abc'" in r.output
