"""`austack demo` with fakes for synth, prepare and the trainer: stages, reuse on rerun, resume
after a failure, the always-active floor, and refusal of folders that are not the demo's."""
from __future__ import annotations

import io
import json
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from austack import load_protocol
from austack.cli.main import cli
from austack.demo import QUICK, STATE_FILE, DemoSteps, run_demo
from austack.engine.record import BenchOutcome
from austack.errors import ConfigError
from austack.results.db import ResultsDB
from austack.results.schema import ResultRow

from conftest import write_tiny_store

PROTO = load_protocol("bp4d-3fold@v1")
F1 = {"demo-wce": 0.5, "demo-aunce": 0.6}


class Fakes:
    """Counts calls; the trainer returns fixed F1 per recipe, and fold 3 of demo-aunce fails."""

    def __init__(self, fail_recipe: str | None = None):
        self.calls: list[str] = []
        self.configs = []
        self.fail_recipe = fail_recipe

    def synthesize(self, dest, layout, **kw):
        self.calls.append("synth")
        assert layout == "bp4d" and kw["subjects"] == QUICK.subjects
        dest.mkdir(parents=True)
        (dest / "AUCoding").mkdir()

    def prepare(self, dataset, raw, out, **kw):
        self.calls.append("prepare")
        assert dataset == "bp4d" and (raw / "AUCoding").is_dir() and kw["resume"] is True
        write_tiny_store(out, per_subject=8, size=16)
        return SimpleNamespace(frames=48, no_face=1)

    def load_recipe(self, name):
        return {"backbone": "test_tiny", "loss": "wce" if name == "demo-wce" else "aunce.paper",
                "epochs": 5, "batch_size": 8, "recipe": name}

    def run_and_record(self, cfg, console=None, progress=None):
        self.calls.append(f"bench {cfg.recipe}")
        self.configs.append(cfg)
        if cfg.recipe == self.fail_recipe:
            raise KeyboardInterrupt   # the user stops the demo in the middle of this stage
        rows = []
        for k in (1, 2, 3):
            row = ResultRow(dataset="bp4d", protocol=PROTO.id, protocol_hash=PROTO.hash, store=cfg.data,
                            store_checksum="x", fold=k, backbone=cfg.backbone, loss=cfg.loss, loss_options={},
                            seed=cfg.seed, epochs=cfg.epochs, config=cfg.to_dict(), aus=list(PROTO.aus))
            if cfg.recipe == "demo-aunce" and k == 3 or self.fail_recipe == "every fold":
                row.status, row.error = "error", "RuntimeError: boom"
            else:
                row.f1, row.accuracy = [F1[cfg.recipe]] * 12, [0.7] * 12
                row.f1_mean, row.accuracy_mean = F1[cfg.recipe], 0.7
            rows.append(row)
        with ResultsDB(cfg.db) as db:
            ids = db.insert_many(rows)
        return BenchOutcome(rows, ids, db=Path(cfg.db))

    def steps(self) -> DemoSteps:
        return DemoSteps(synthesize=self.synthesize, prepare=self.prepare, run_and_record=self.run_and_record,
                         load_recipe=self.load_recipe)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def trivial_by_hand(store) -> dict[int, float]:
    import h5py

    with h5py.File(store) as f:
        labels, subjects = f["labels"][:], f["subject"].asstr()[:]
    out = {}
    for fold in (1, 2, 3):
        test = set(PROTO.subjects(fold, "test", set(subjects)))
        y = labels[np.isin(subjects, list(test))]
        pos, neg = (y == 1).sum(0), (y == 0).sum(0)
        out[fold] = float(np.mean(2 * pos / (2 * pos + neg)))   # TP = P, FP = N, FN = 0
    return out


def test_demo_runs_every_stage_and_reports_the_margin(tmp_path):
    fakes, console = Fakes(), quiet()
    result = run_demo(tmp_path / "demo", quick=True, console=console, steps=fakes.steps())
    assert fakes.calls == ["synth", "prepare", "bench demo-wce", "bench demo-aunce"]
    assert [s.name for s in result.stages] == ["synth", "prepare", "bench demo-wce", "bench demo-aunce",
                                               "leaderboard"]
    cfg = fakes.configs[0]
    assert (cfg.data, cfg.db) == (str(result.store), str(result.db))
    assert (cfg.epochs, cfg.linear_epochs, cfg.batch_size) == (1, 1, 16)   # quick overrides the recipe
    assert cfg.backbone == "test_tiny" and cfg.out_dir == str(tmp_path / "demo" / "runs")
    assert len(result.rows) == 6 and sum(r.status == "error" for r in result.rows) == 1
    assert ResultsDB(result.db).count() == 6

    assert result.trivial_f1 == pytest.approx(trivial_by_hand(result.store))
    [board] = result.boards
    by_method = {r.method: r for r in board.of_kind("measured")}
    assert by_method["test_tiny + wce"].avg == pytest.approx(50.0)
    assert "partial: 2/3 folds" in by_method["test_tiny + aunce.paper"].flags

    text = console.file.getvalue()
    assert "48 frames, 1 without a face" in text
    assert "[1/5] synth: done in" in text and "[5/5] leaderboard: done in" in text
    wce_margin = 50.0 - 100 * result.trivial_f1_mean()
    aunce_margin = 60.0 - 100 * result.trivial_f1_mean([1, 2])    # its fold 3 failed
    assert "Margin over the always-active predictor" in text
    assert f"{wce_margin:+.1f}" in text and f"{aunce_margin:+.1f}" in text
    assert "1 failed fold run(s) (status=error) not shown" in text


def test_rerun_reuses_every_finished_stage(tmp_path):
    first = run_demo(tmp_path / "demo", quick=True, console=quiet(), steps=Fakes().steps())
    fakes, console = Fakes(), quiet()
    again = run_demo(tmp_path / "demo", quick=True, console=console, steps=fakes.steps())
    assert fakes.calls == []
    assert all(s.reused for s in again.stages[:-1])
    assert again.rows == first.rows and ResultsDB(again.db).count() == 6
    assert "[3/5] bench demo-wce: reused" in console.file.getvalue()


def test_an_interrupted_stage_is_redone_and_the_rest_reused(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path / "demo", quick=True, console=quiet(), steps=Fakes(fail_recipe="demo-aunce").steps())
    state = json.loads((tmp_path / "demo" / STATE_FILE).read_text())
    assert sorted(state["stages"]) == ["bench demo-wce", "prepare", "synth"]
    fakes = Fakes()
    result = run_demo(tmp_path / "demo", quick=True, console=quiet(), steps=fakes.steps())
    assert fakes.calls == ["bench demo-aunce"]
    assert ResultsDB(result.db).count() == 6 and len(result.rows) == 6


def test_a_half_written_synth_folder_is_started_over(tmp_path):
    out = tmp_path / "demo"
    with pytest.raises(KeyboardInterrupt):
        run_demo(out, quick=True, console=quiet(), steps=DemoSteps(synthesize=_interrupted_synth))
    assert (out / "raw" / "bp4d" / "partial.jpg").exists()
    run_demo(out, quick=True, console=quiet(), steps=Fakes().steps())   # Fakes.synthesize needs an absent dest
    assert not (out / "raw" / "bp4d" / "partial.jpg").exists()


def _interrupted_synth(dest, layout, **kw):
    dest.mkdir(parents=True)
    (dest / "partial.jpg").write_bytes(b"\xff\xd8")
    raise KeyboardInterrupt


def test_refuses_a_folder_that_is_not_the_demos(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not empty and holds no demo-state.json"):
        run_demo(tmp_path, quick=True, console=quiet(), steps=Fakes().steps())
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_refuses_to_mix_quick_and_full(tmp_path):
    run_demo(tmp_path / "demo", quick=True, console=quiet(), steps=Fakes().steps())
    with pytest.raises(ConfigError, match="holds a 'quick' demo, not a 'full' one"):
        run_demo(tmp_path / "demo", quick=False, console=quiet(), steps=Fakes().steps())


def test_cli_demo_help_and_arguments(tmp_path, monkeypatch):
    runner = CliRunner()
    res = runner.invoke(cli, ["demo", "--help"])
    assert res.exit_code == 0 and "--quick" in res.output and "--out" in res.output
    seen = {}
    ok, failed = SimpleNamespace(status="ok"), SimpleNamespace(status="error")

    def fake_run_demo(out, **kw):
        seen.update(out=out, **kw)
        return SimpleNamespace(rows=seen.pop("rows"), db=out / "results.sqlite")

    monkeypatch.setattr("austack.demo.run_demo", fake_run_demo)
    seen["rows"] = [failed, ok]
    res = runner.invoke(cli, ["demo", "--out", str(tmp_path / "d"), "--quick"])
    assert res.exit_code == 0, res.output
    assert seen == {"out": tmp_path / "d", "quick": True, "workers": 2, "threads": None}
    seen["rows"] = [ok]
    res = runner.invoke(cli, ["demo", "--out", str(tmp_path / "d"), "--threads", "1"])
    assert res.exit_code == 0 and seen["threads"] == 1
    seen["rows"] = [failed, failed]
    res = runner.invoke(cli, ["demo", "--out", str(tmp_path / "d")])
    assert res.exit_code == 1 and "every fold of every demo recipe failed" in res.output
    res = runner.invoke(cli, ["demo", "--workers", "0"])
    assert res.exit_code == 2 and "Traceback" not in res.output


@pytest.mark.slow
def test_demo_with_the_real_trainer(tmp_path):
    # Only synth and prepare are faked: the trainer trains the registered `test_tiny` encoder.
    import torch

    fakes = Fakes()
    recipes = {"demo-wce": "wce", "demo-aunce": "aunce.paper"}
    fakes.prepare = lambda dataset, raw, out, **kw: (write_tiny_store(out), SimpleNamespace(frames=144))[1]
    steps = DemoSteps(synthesize=fakes.synthesize, prepare=fakes.prepare, load_recipe=lambda name: {
        "backbone": "test_tiny", "loss": recipes[name], "batch_size": 16, "lr": 3e-3, "image_size": 40,
        "device": "cpu", "workers": 0, "recipe": name})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_demo(tmp_path / "demo", quick=True, console=quiet(), steps=steps)
    finally:
        torch.set_num_threads(threads)
    assert len(result.rows) == 6 and all(r.status == "ok" for r in result.rows), [r.error for r in result.rows]
    assert {(r.loss, r.epochs) for r in result.rows} == {("wce", 1), ("aunce.paper", 1)}
    measured = result.boards[0].of_kind("measured")
    assert len(measured) == 2 and all(r.complete and 0 <= r.avg <= 100 for r in measured)


def test_a_stage_run_with_other_settings_is_not_overwritten(tmp_path):
    run_demo(tmp_path / "demo", quick=True, console=quiet(), steps=Fakes().steps())
    state_file = tmp_path / "demo" / STATE_FILE
    state = json.loads(state_file.read_text())
    state["stages"]["prepare"]["settings"]["landmarks"] = "dlib"     # as if made by another version
    state_file.write_text(json.dumps(state))
    fakes = Fakes()
    with pytest.raises(ConfigError, match="ran stage 'prepare' with other settings"):
        run_demo(tmp_path / "demo", quick=True, console=quiet(), steps=fakes.steps())
    assert fakes.calls == []


def test_every_fold_failing_is_said_plainly(tmp_path):
    console = quiet()
    result = run_demo(tmp_path / "demo", quick=True, console=console, steps=Fakes("every fold").steps())
    assert [r.status for r in result.rows] == ["error"] * 6
    text = console.file.getvalue()
    assert "no recipe finished a fold" in text and "6 failed fold run(s) (status=error) not shown" in text


def test_long_stages_say_their_progress_in_a_log(tmp_path):
    """synth and prepare report each quarter as a plain line, with the whole demo's ETA, so a
    log shows them moving."""
    from austack.demo import FULL, STAGE_SECONDS, _Stages, _State
    from austack.eta import RunClock

    out, now = io.StringIO(), [0.0]
    clock = RunClock(STAGE_SECONDS, clock=lambda: now[0])
    stages = _Stages(_State(tmp_path / "demo", FULL), Console(file=out, width=80), total=5, clock=clock)
    report = stages.reporter("synth", "frames rendered")
    for done in range(0, 101, 5):
        now[0] = done / 10          # 10 s for the whole synth stage
        report(done, 100)
    lines = [line.strip() for line in out.getvalue().splitlines()]
    assert [line.split(" (")[0] for line in lines] == ["synth: 25 of 100 frames rendered",
                                                       "synth: 50 of 100 frames rendered",
                                                       "synth: 75 of 100 frames rendered"]
    assert all("ETA" in line and len(line) <= 80 for line in lines)
    # half of synth took 5 s: synth is 12 of the demo's 159 weighted seconds, so 5 s is 3.8% of it
    now[0] = 0.0
    clock = RunClock(STAGE_SECONDS, clock=lambda: now[0])
    now[0] = 5.0
    clock.update("synth", 0.5)
    assert clock.fraction() == pytest.approx(6 / 159)
    assert clock.remaining() == pytest.approx(5.0 * (1 - 6 / 159) / (6 / 159))


def test_the_demo_eta_follows_bench_events_and_skips_reused_stages():
    from austack.demo import STAGE_SECONDS
    from austack.engine.events import BenchEvent
    from austack.eta import RunClock, bench_fraction

    clock, state = RunClock(STAGE_SECONDS, clock=lambda: 10.0), {}
    clock.skip("synth"), clock.skip("prepare")
    for fold in (1, 2, 3):
        for epoch in (1, 2):
            f = bench_fraction(BenchEvent("epoch", fold, "train", epoch, 2), 3, state)
            clock.update("bench demo-wce", f)
        clock.update("bench demo-wce", bench_fraction(BenchEvent("fold_done", fold), 3, state))
    assert clock.fraction() == pytest.approx(38 / (38 + 107))
    assert bench_fraction(BenchEvent("step", 1, "train", 2, 4, step=5, steps=10), 3, {"done": 1}) == \
        pytest.approx((1 + 1.5 / 4) / 3)


def test_the_demo_reports_its_versions_against_the_lock(tmp_path):
    console = quiet()
    result = run_demo(tmp_path / "demo", quick=True, console=console, steps=Fakes().steps())
    env = result.environment
    assert set(env["versions"]) == {"torch", "torchvision", "timm", "numpy", "opencv", "h5py", "scipy",
                                    "sklearn"}
    assert isinstance(env["matches_lock"], bool) and isinstance(env["differs"], dict)
    state = json.loads((tmp_path / "demo" / STATE_FILE).read_text())
    assert state["environment"]["versions"] == env["versions"]     # the structured record of the run
    assert "versions: torch" in console.file.getvalue()
