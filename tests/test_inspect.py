"""`austack inspect`: the reader-level summary equals what the generator wrote."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from austack.cli.main import cli
from austack.inspect import summarize_raw
from austack.synth import synthesize


@pytest.fixture(scope="module")
def disfa_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("disfa")
    report = synthesize(root, "disfa", subjects=3, frames=16, seed=3)
    return root, report


def test_summary_matches_truth(disfa_root):
    root, report = disfa_root
    s = summarize_raw("disfa", root)
    truth = report.truth.sessions
    assert [x.subject for x in s.subjects] == sorted(t.subject for t in truth)
    assert s.frames == sum(len(t.frames) for t in truth)
    labels = np.concatenate([t.labels for t in truth])
    expected = (labels == 1).sum(0) / (labels >= 0).sum(0)
    np.testing.assert_allclose(s.rates(), expected)
    assert sorted(a.kind for a in s.anomalies) == sorted(k for k, _ in report.truth.anomalies)


def test_cli_inspect_and_bad_root(disfa_root, tmp_path):
    root, _ = disfa_root
    runner = CliRunner()
    r = runner.invoke(cli, ["inspect", "disfa", str(root), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert len(summary["subjects"]) == 3 and "missing_landmarks" in summary["anomalies"]
    assert runner.invoke(cli, ["inspect", "disfa", str(root)]).exit_code == 0   # the tables still print
    r = runner.invoke(cli, ["inspect", "bp4d", str(root)])
    assert r.exit_code == 1 and "Expected a raw bp4d distribution" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["inspect", "bp4e", str(root)])
    assert r.exit_code == 2 and "did you mean 'bp4d'" in r.output
