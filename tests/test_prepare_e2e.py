"""End to end: the synthetic generator writes every raw layout, `austack prepare` stores it, and the
store holds exactly what the generator wrote (frames, labels, unknowns, subjects, sessions)."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
from click.testing import CliRunner

from austack.cli.main import cli
from austack.errors import RawDataError
from austack.prepare import prepare
from austack.store import open_store, verify
from austack.synth.layouts.base import LAYOUTS as LAYOUT_WRITERS

from fake_sessions import make_session

for _module in ("bp4d", "bp4dplus", "disfa", "gft", "affwild2"):  # importing a writer registers it
    importlib.import_module(f"austack.synth.layouts.{_module}")

try:
    from austack.synth import synthesize
except ImportError:  # the generator is built in parallel; its tests run once it exists
    synthesize = None
needs_synth = pytest.mark.skipif(synthesize is None, reason="austack.synth.synthesize is not available yet")

LAYOUTS = ["bp4d", "bp4d+", "disfa", "gft", "affwild2"]


def _prepare(tmp_path, layout: str, landmarks: str):
    raw = tmp_path / "raw"
    truth = synthesize(raw, layout, subjects=2, sessions=1, frames=4, seed=3).truth
    out = tmp_path / f"{layout}.h5"
    res = CliRunner().invoke(cli, ["prepare", layout, str(raw), str(out), "--landmarks", landmarks, "--size", "64"])
    assert res.exit_code == 0, res.output
    return truth, out


def _check(truth, out):
    assert verify(out).ok, verify(out).problems
    with open_store(out) as s:
        table = {(str(r["subject"], "utf-8") if isinstance(r["subject"], bytes) else r["subject"],
                  str(r["session"], "utf-8") if isinstance(r["session"], bytes) else r["session"]):
                 (int(r["start"]), int(r["stop"])) for r in s.sessions}
        assert set(table) == {(t.subject, t.session) for t in truth.sessions}
        for t in truth.sessions:
            a, b = table[(t.subject, t.session)]
            assert s.frames[a:b].tolist() == list(t.frames), (t.subject, t.session)
            np.testing.assert_array_equal(s.labels[a:b], t.labels)          # unknowns (-1) included
            if t.intensities is not None:
                np.testing.assert_array_equal(s.intensities[a:b], t.intensities)
            assert set(s.splits[a:b]) == {t.split or ""}
        no_face = sum(x.count for x in s.anomalies() if x.kind in ("no_face", "unreadable"))
        assert int((s.face == 0).sum()) == no_face   # every frame without a face is reported
        return s.face.mean()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_writer_then_prepare_with_the_real_reader(tmp_path, layout):
    """Noise frames in each real layout (no renderer): the store keeps every frame and label;
    shipped landmarks (BP4D 49, DISFA 66) align every frame whose landmarks exist."""
    writer = LAYOUT_WRITERS.get(layout)()
    rng = np.random.default_rng(0)
    subjects = writer.subject_ids(2, rng)
    sessions = [make_session(s, writer.session_ids(s, 1)[0], 3, seed=k, size=(60, 80))
                for k, s in enumerate(subjects)]
    truth = writer.write(tmp_path / "raw", sessions, rng)
    report = prepare(layout, tmp_path / "raw", tmp_path / "s.h5", landmarks="shipped", size=32)
    _check(truth, tmp_path / "s.h5")
    shipped = sum(len(t.frames) - len(t.landmarks_missing) for t in truth.sessions if t.landmark_points)
    assert report.origins.get("shipped", 0) == shipped


@needs_synth
@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_synth_then_prepare(tmp_path, layout):
    truth, out = _prepare(tmp_path, layout, "auto")
    assert _check(truth, out) > 0.5


@needs_synth
@pytest.mark.slow
@pytest.mark.parametrize("layout", ["bp4d", "disfa"])
def test_synth_then_prepare_with_dlib(tmp_path, layout):
    truth, out = _prepare(tmp_path, layout, "dlib")
    assert _check(truth, out) > 0.5
    with open_store(out) as s:
        assert set(np.unique(s.file["landmark_origin"][:])) <= {0, 2}


@needs_synth
def test_the_store_records_a_synthetic_source(tmp_path):
    raw = tmp_path / "raw"
    synthesize(raw, "bp4d", subjects=1, sessions=1, frames=2, noise=0.1, seed=5)
    prepare("bp4d", raw, tmp_path / "s.h5", landmarks="shipped", size=32)
    with open_store(tmp_path / "s.h5") as s:
        assert s.source_synthetic and s.source_noise == 0.1 and s.source_synth_seed == 5
    manifest = raw / "_synth" / "manifest.json"
    manifest.write_text("{")
    with pytest.raises(RawDataError, match=r"manifest.json is not a readable synth manifest.*rerun `austack synth`"):
        prepare("bp4d", raw, tmp_path / "t.h5", landmarks="shipped", size=32)
