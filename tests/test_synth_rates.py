"""At `austack synth`'s default sizes, every fold's training subjects show every AU of the
protocol at about its target rate (Table I), read back through the dataset's own reader.

Before, a fixed episode threshold hit the rates only in the long run: synthetic DISFA's AU25
(27.8%) came out at 0%, and bench refused every DISFA, GFT and Aff-Wild2 fold.
"""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from austack.cli.main import cli as austack_cli
from austack.datasets import create_reader
from austack.protocols import load_protocol
from austack.synth import LAYOUTS, load_layouts
from austack.synth.episodes import target_rates
from austack.synth.layouts.base import ALL_AUS

TOLERANCE = 0.04      # 40-frame sessions round each AU to whole frames; unknown codes and
                      # dropped frames move the rest


def training_rates(layout: str, root) -> dict[int, np.ndarray]:
    """Occurrence rate per protocol AU over each fold's training split (validation excluded)."""
    proto = load_protocol(LAYOUTS.get(layout).protocol)
    records, _ = create_reader(layout, root).read_all()
    frames = [f for r in records for f in r.frames]
    units = {f.subject: f.split for f in frames}
    out = {}
    for fold in proto.folds:
        train = set(proto.subjects(fold.index, "train", units))
        labels = np.stack([f.labels for f in frames if f.subject in train])
        out[fold.index] = (labels == 1).sum(0) / (labels >= 0).sum(0)
    return out


@pytest.mark.parametrize("layout", ["bp4d", "bp4d+", "disfa", "gft", "affwild2"])
def test_default_synth_hits_the_rates_in_every_training_fold(layout, tmp_path):
    # default subjects, sessions and frames; the smallest frame size (rates do not depend on it)
    result = CliRunner().invoke(austack_cli, ["synth", str(tmp_path / "raw"), "--layout", layout,
                                              "--size", "96"])
    assert result.exit_code == 0, result.output
    load_layouts()
    proto = load_protocol(LAYOUTS.get(layout).protocol)
    want = target_rates(proto)[[ALL_AUS.index(a) for a in proto.aus]]
    folds = training_rates(layout, tmp_path / "raw")
    assert sorted(folds) == [f.index for f in proto.folds]
    for fold, got in folds.items():
        for au, w, g in zip(proto.aus, want, got):
            assert g > 0, f"{layout} fold {fold}: AU{au} never occurs in the training subjects"
            assert abs(g - w) <= TOLERANCE, f"{layout} fold {fold}: AU{au} at {g:.3f}, target {w:.3f}"
