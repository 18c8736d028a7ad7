"""The trainer end to end on a tiny store (CPU, `test_tiny` encoder): WCE, AUNCE + linear
evaluation, repeatability, resume from `last.pt`, and selection on validation only."""
from __future__ import annotations

import csv
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from rich.console import Console

from austack.engine import BenchConfig, run_bench
from austack.engine.bench import BenchEvent
from austack.engine.checkpoint import CHECKPOINT_NAME
from austack.errors import ConfigError

from conftest import write_tiny_store

QUIET = Console(quiet=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(store, out_dir, loss="wce", **over) -> BenchConfig:
    base = dict(backbone="test_tiny", loss=loss, data=str(store), folds=(1,), epochs=2, batch_size=16, lr=3e-3,
                image_size=40, device="cpu", seed=0, workers=0, out_dir=str(out_dir), linear_epochs=3)
    return BenchConfig(**{**base, **over})


def run(cfg, progress=None):
    rows = run_bench(cfg, console=QUIET, progress=progress)
    assert len(rows) == len(cfg.folds)
    return rows


@pytest.fixture(scope="module")
def wce_row(tiny_store, tmp_path_factory):
    return run(config(tiny_store, tmp_path_factory.mktemp("wce")))[0]


@pytest.fixture(scope="module")
def aunce_row(tiny_store, tmp_path_factory):
    return run(config(tiny_store, tmp_path_factory.mktemp("aunce"), loss="aunce.paper"))[0]


def check_sane(row, *, n_epochs):
    assert row.status == "ok", row.error
    assert row.dataset == "bp4d" and row.protocol == "bp4d-3fold@v1" and row.fold == 1
    assert len(row.f1) == len(row.accuracy) == len(row.aus) == 12
    assert all(0 <= v <= 1 for v in row.f1 + row.accuracy)
    assert math.isclose(row.f1_mean, sum(row.f1) / 12) and 0 <= row.val_f1_mean <= 1
    assert row.selected_on == "val" and 1 <= row.best_epoch <= n_epochs
    assert row.n_train > 0 and row.n_val > 0 and row.n_test > 0
    assert row.images_per_s > 0 and row.wall_s > 0 and row.peak_mem_mb > 0
    assert row.device.startswith("cpu") and row.torch_version == torch.__version__
    assert row.pretrained is None and row.comparable
    assert row.config["backbone"] == "test_tiny" and row.config["protocol"] == "bp4d-3fold@v1"


def read_csv(run_dir):
    with open(f"{run_dir}/epochs.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_wce_run_fills_a_sane_row(wce_row):
    check_sane(wce_row, n_epochs=2)
    epochs = read_csv(wce_row.run_dir)
    assert [e["phase"] for e in epochs] == ["train", "train"]
    assert all(e["val_f1_mean"] for e in epochs)
    best = max(epochs, key=lambda e: float(e["val_f1_mean"]))
    assert int(best["epoch"]) == wce_row.best_epoch
    for name in ("config.yaml", CHECKPOINT_NAME, "best.pt"):
        assert Path(wce_row.run_dir, name).is_file(), name


def test_aunce_trains_encoder_then_linear_eval(aunce_row):
    check_sane(aunce_row, n_epochs=3)   # best_epoch counts linear-evaluation epochs
    phases = [e["phase"] for e in read_csv(aunce_row.run_dir)]
    assert phases == ["train", "train", "linear", "linear", "linear"]


def test_same_seed_gives_identical_metrics(tiny_store, tmp_path, wce_row):
    again = run(config(tiny_store, tmp_path))[0]
    assert again.f1 == wce_row.f1 and again.val_f1_mean == wce_row.val_f1_mean
    other = run(config(tiny_store, tmp_path / "seed1", seed=1))[0]
    assert other.f1 != wce_row.f1


class Interrupt(Exception):
    pass


def stop_after_first_epoch(event: BenchEvent):
    if event.kind == "epoch" and event.phase == "train" and event.epoch == 1:
        raise Interrupt("interrupted after epoch 1")


@pytest.mark.parametrize("loss", ["wce", "aunce.paper"])
def test_interrupted_run_resumes_to_the_same_result(tiny_store, tmp_path, loss, wce_row, aunce_row):
    cfg = config(tiny_store, tmp_path, loss=loss)
    first = run(cfg, progress=stop_after_first_epoch)[0]
    assert first.status == "error" and "interrupted after epoch 1" in first.error
    state = torch.load(f"{first.run_dir}/{CHECKPOINT_NAME}", weights_only=False)
    assert state["epoch"] == 0 and len(state["history"]) == 1

    resumed = run(cfg)[0]
    whole = wce_row if loss == "wce" else aunce_row
    assert resumed.status == "ok"
    assert resumed.f1 == whole.f1 and resumed.best_epoch == whole.best_epoch
    assert [e["train_loss"] for e in read_csv(resumed.run_dir)] == [e["train_loss"] for e in read_csv(whole.run_dir)]


def test_a_changed_setting_is_a_new_run_dir_and_a_foreign_checkpoint_is_refused(tiny_store, tmp_path):
    first = run(config(tiny_store, tmp_path, epochs=1))[0]
    other = run(config(tiny_store, tmp_path, epochs=1, lr=1e-3))[0]
    assert first.status == other.status == "ok"
    assert first.config_hash != other.config_hash and first.run_dir != other.run_dir
    assert first.config_hash in first.run_dir
    # a last.pt moved by hand into the run dir of another config is refused, with the way out
    shutil.copy(Path(first.run_dir) / CHECKPOINT_NAME, Path(other.run_dir) / CHECKPOINT_NAME)
    again = run(config(tiny_store, tmp_path, epochs=1, lr=1e-3))[0]
    assert again.status == "error" and "belongs to another run config" in again.error and "--out-dir" in again.error


def test_a_planted_pickle_is_never_executed_on_resume(tiny_store, tmp_path):
    """`last.pt` is loaded with weights_only=True: a run dir from someone else cannot run code."""
    import pickle

    cfg = config(tiny_store, tmp_path, epochs=1)
    row = run(cfg)[0]
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (Path(row.run_dir) / CHECKPOINT_NAME).write_bytes(pickle.dumps({"config_hash": row.config_hash, "x": Payload()}))
    again = run(cfg)[0]
    assert not marker.exists()
    assert again.status == "error" and "not a checkpoint this austack can resume from" in again.error


@pytest.mark.parametrize("loss", ["wce", "aunce.paper"])
def test_test_fold_never_chooses_the_epoch(tmp_path, loss):
    """Inverting the test subjects' labels changes the test score, never the selection."""
    plain = write_tiny_store(tmp_path / "plain.h5")
    inverted = write_tiny_store(tmp_path / "inverted.h5", invert_subjects=("F007", "F015"))  # fold 1's test part
    a = run(config(plain, tmp_path / "a", loss=loss, epochs=2, linear_epochs=3))[0]
    b = run(config(inverted, tmp_path / "b", loss=loss, epochs=2, linear_epochs=3))[0]
    assert a.status == b.status == "ok"
    assert a.val_f1_mean == b.val_f1_mean and a.best_epoch == b.best_epoch
    assert a.f1 != b.f1 and a.selected_on == b.selected_on == "val"


def test_failing_fold_becomes_an_error_row_and_the_others_go_on(tiny_store, tmp_path):
    def fail_fold_1(event: BenchEvent):
        if event.kind == "epoch" and event.fold == 1:
            raise RuntimeError("fold 1 broke")

    rows = run(config(tiny_store, tmp_path, folds=(1, 2), epochs=1, linear_epochs=1), progress=fail_fold_1)
    assert [(r.fold, r.status) for r in rows] == [(1, "error"), (2, "ok")]
    assert rows[0].error == "RuntimeError: fold 1 broke"


def test_too_few_training_frames_is_one_error_before_any_fold(tiny_store, tmp_path):
    with pytest.raises(ConfigError, match="fold 1: 4 training frames .* lower --batch-size"):
        run_bench(config(tiny_store, tmp_path, epochs=1, limit_train=4), console=QUIET)
    assert not (tmp_path / "runs").exists() and not list(tmp_path.rglob("*.pt"))


@pytest.mark.parametrize("over, message", [
    (dict(epochs=0), "epochs must be at least 1"),
    (dict(pretrained="/nonexistent/w.pth"), "w.pth"),
    (dict(folds=(7,)), "fold 7"),
    (dict(loss_options={"tauu": 0.5}), "has no option(s) 'tauu'"),
])
def test_mistakes_that_affect_every_fold_fail_once_before_training(tiny_store, tmp_path, over, message):
    from austack.errors import AustackError
    with pytest.raises(AustackError, match=re.escape(message)):
        run_bench(config(tiny_store, tmp_path, loss="aunce.paper", **over), console=QUIET)
    assert not list(tmp_path.rglob("*.pt"))


def test_cosine_schedule_anneals_and_resumes_exactly(tiny_store, tmp_path):
    cfg = config(tiny_store, tmp_path / "whole", lr_schedule="cosine", epochs=3)
    whole = run(cfg)[0]
    lrs = [float(e["lr"]) for e in read_csv(whole.run_dir)]
    assert lrs[0] == pytest.approx(cfg.lr) and lrs[0] > lrs[1] > lrs[2] > 0
    cut = config(tiny_store, tmp_path / "cut", lr_schedule="cosine", epochs=3)
    assert run(cut, progress=stop_after_first_epoch)[0].status == "error"
    resumed = run(cut)[0]
    assert [float(e["lr"]) for e in read_csv(resumed.run_dir)] == lrs and resumed.f1 == whole.f1


def test_unknown_lr_schedule_is_refused(tiny_store, tmp_path):
    with pytest.raises(ConfigError, match="unknown lr_schedule 'step'; expected one of constant, cosine"):
        config(tiny_store, tmp_path, lr_schedule="step")


def test_linear_evaluation_options_reach_the_linear_heads(tiny_store, tmp_path, monkeypatch):
    import austack.engine.linear_eval as bench_mod
    from austack.data import BatchAugment

    seen = {}
    real = bench_mod.linear_eval

    def spy(encoder, **kwargs):
        seen.update(kwargs)
        return real(encoder, **kwargs)

    monkeypatch.setattr(bench_mod, "linear_eval", spy)
    cfg = config(tiny_store, tmp_path, loss="aunce.paper", epochs=1, linear_epochs=2, linear_lr=0.05,
                 linear_augment=True)
    (row,) = run(cfg)
    assert row.status == "ok", row.error
    assert seen["lr"] == 0.05
    aug = seen["train_augment"]
    assert isinstance(aug, BatchAugment) and aug.training and aug.views == 1
    assert (aug.jitter_p, aug.gray_p, aug.blur_p) == (0.0, 0.0, 0.0)   # the 'basic' policy: crop + flip
    assert aug.crop == cfg.image_size

    seen.clear()
    (row,) = run(config(tiny_store, tmp_path / "plain", loss="aunce.paper", epochs=1, linear_epochs=1))
    assert seen["train_augment"] is None and seen["lr"] == 1e-2


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_training_matches_eager(tiny_store, tmp_path):
    """torch.compile changes how the forward runs, not what it computes: one epoch compiled and
    one eager from the same seed end with the same training loss (to float rounding)."""
    rows = {}
    for compiled in (False, True):
        cfg = config(tiny_store, tmp_path / str(compiled), epochs=1, compile=compiled)
        (rows[compiled],) = run(cfg)
        assert rows[compiled].status == "ok", rows[compiled].error
    losses = []
    for compiled in (False, True):
        run_dir = next((tmp_path / str(compiled)).glob("*/fold1"))
        with open(run_dir / "epochs.csv", newline="") as f:
            losses.append(float(next(csv.DictReader(f))["train_loss"]))
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_grad_clip_bounds_each_step(clip):
    """With SGD at lr 1 the parameters move by exactly the (clipped) gradient: its norm is at
    most `grad_clip` when clipping, and far larger without."""
    from austack.data import BatchAugment
    from austack.engine.train import train_one_epoch
    from austack.losses import create_loss
    from austack.models import create_encoder

    torch.manual_seed(0)
    encoder = create_encoder("test_tiny", 12)
    loss_fn = create_loss("wce")
    loss_fn.set_rates(torch.full((12,), 0.3))
    images = torch.randint(0, 256, (8, 3, 40, 40), dtype=torch.uint8)
    labels = torch.randint(0, 2, (8, 12), dtype=torch.int8)
    before = torch.cat([p.detach().flatten().clone() for p in encoder.parameters()])
    train_one_epoch(encoder, [(images, labels, torch.arange(8))], loss_fn, torch.optim.SGD(encoder.parameters(), lr=1.0),
                    BatchAugment(40, views=1, seed=0), torch.device("cpu"), grad_clip=clip)
    moved = (torch.cat([p.detach().flatten() for p in encoder.parameters()]) - before).norm().item()
    if clip is None:
        assert moved > 1e-2
    else:
        assert 0 < moved <= clip * (1 + 1e-4)


@pytest.mark.parametrize("name", ["grad_clip", "lr", "linear_lr"])
def test_step_sizes_and_clip_must_be_positive(tiny_store, tmp_path, name):
    # a recipe file skips the CLI's range checks: the config itself refuses
    with pytest.raises(ConfigError, match=f"{name} must be positive"):
        config(tiny_store, tmp_path, **{name: 0.0})
