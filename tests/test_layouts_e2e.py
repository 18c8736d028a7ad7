"""Every layout end to end with default settings, small sizes only: synth -> prepare -> bench.

Each fold of the layout's standard protocol must train and record an `ok` row, with no AU
skipped for want of training positives (synth shows every AU in every session).
"""
from __future__ import annotations

import sqlite3
import warnings

import pytest
from click.testing import CliRunner

from austack.cli.main import cli as austack_cli
from austack.losses.weights import AUSkippedWarning
from austack.protocols import load_protocol
from austack.synth import LAYOUTS, load_layouts

SYNTH = ["--subjects", "6", "--sessions", "1", "--frames", "8", "--size", "96"]
BENCH = ["--epochs", "1", "--batch-size", "8", "--image-size", "32", "--workers", "0"]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(austack_cli, list(args))
    assert result.exit_code == 0, f"austack {' '.join(args)}:\n{result.output}"
    return result.output


@pytest.mark.parametrize("layout", ["bp4d", "bp4d+", "disfa", "gft", "affwild2"])
def test_synth_prepare_bench_records_every_fold(layout, tmp_path):
    raw, store, db = tmp_path / "raw", tmp_path / "raw.h5", tmp_path / "results.sqlite"
    invoke("synth", str(raw), "--layout", layout, *SYNTH)
    invoke("prepare", layout, str(raw), str(store))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AUSkippedWarning)
        invoke("bench", "test_tiny", "wce", "--data", str(store), *BENCH,
               "--out-dir", str(tmp_path / "runs"), "--db", str(db))
    skipped = [str(w.message) for w in caught if issubclass(w.category, AUSkippedWarning)]
    assert not skipped, skipped
    load_layouts()
    folds = [f.index for f in load_protocol(LAYOUTS.get(layout).protocol).folds]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT fold, status, error FROM results ORDER BY fold").fetchall()
    assert [(fold, status) for fold, status, _ in rows] == [(k, "ok") for k in folds], rows
