"""`--pretrained` by timm tag through an offline Hugging Face cache, `published`, `none`, MAE-style
files, the refusals before the first fold, and `austack weights`. No network: the cache is filled
here with a timm test model's own initialisation (tests/hf_cache.py)."""
from __future__ import annotations

import json

import pytest
import timm
import torch
from click.testing import CliRunner

from austack.cli.main import cli
from austack.errors import ConfigError
from austack.fileio import sha256_file
from austack.models import create_encoder
from austack.models.pretrained import default_tag_note, resolve_weights
from austack.results.db import ResultsDB

from hf_cache import cache_timm_weights

TAG = "test_resnet.r160_in1k"
SMALL = ["--fold", "1", "--epochs", "1", "--batch-size", "8", "--image-size", "40", "--device", "cpu",
         "--workers", "0"]


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    path, state = cache_timm_weights(home, TAG)
    return home, path, state


@pytest.fixture
def offline(hf_home, monkeypatch):
    home, _, _ = hf_home
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hf_home


def bench(args, tmp_path):
    torch.set_num_threads(1)
    db = tmp_path / "results.sqlite"
    r = CliRunner().invoke(cli, ["bench", *args, *SMALL, "--db", str(db), "--out-dir", str(tmp_path / "runs")])
    return r, db


def test_bench_starts_from_the_cached_tag_and_records_its_file(offline, tiny_store, tmp_path, monkeypatch):
    _, path, state = offline
    import austack.engine.bench as engine_bench

    seen, real_fit = {}, engine_bench.fit

    def spy(run, fold, regime):   # the backbone as training starts
        seen.update({k: v.detach().clone() for k, v in fold.encoder.backbone.model.state_dict().items()})
        return real_fit(run, fold, regime)

    monkeypatch.setattr(engine_bench, "fit", spy)
    r, db = bench(["test_resnet", "wce", "--data", str(tiny_store), "--pretrained", TAG], tmp_path)
    assert r.exit_code == 0, r.output
    for key, value in seen.items():
        if key in state:
            assert torch.equal(value, state[key]), key
    assert len([k for k in seen if k in state]) > 10
    (row,) = ResultsDB(db).query()
    sha = sha256_file(path)
    weights = row.provenance["weights"]
    assert row.pretrained == TAG and weights["tag"] == TAG and weights["sha256"] == sha
    assert weights["size"] == path.stat().st_size and weights["path"] == str(path)
    saved = torch.load(row.detector, weights_only=True)["encoder"]
    assert saved["init"] == TAG and saved["init_sha256"] == sha and saved["init_size"] == weights["size"]


def test_one_file_by_tag_or_by_path_is_one_experiment(offline, tiny_store, tmp_path):
    from austack.engine import BenchConfig
    from austack.engine.preflight import open_run
    from rich.console import Console

    _, path, _ = offline
    hashes = set()
    for spec in (TAG, str(path)):
        cfg = BenchConfig(backbone="test_resnet", loss="wce", data=str(tiny_store), folds=(1,), batch_size=8,
                          device="cpu", out_dir=str(tmp_path), pretrained=spec)
        hashes.add(open_run(cfg, Console(quiet=True)).config_hash)
    assert len(hashes) == 1


@pytest.mark.parametrize("backbone, spec, words", [
    ("test_vit", "test_vit.r160_in1k", ["test_vit.r160_in1k", "hub", "austack weights fetch test_vit.r160_in1k"]),
    ("test_resnet", "test_resnet.nope_in1k", ["test_resnet.nope_in1k", "knows no such tag"]),
    ("test_resnet", "vit-file", ["vit.pth", "another architecture"]),
    ("test_resnet", "test_vit.r160_in1k", ["are for test_vit", "test_resnet"]),
])
def test_weights_that_cannot_be_had_are_refused_before_training(offline, tiny_store, tmp_path, backbone,
                                                                spec, words):
    if spec == "vit-file":
        spec = str(tmp_path / "vit.pth")
        torch.save(timm.create_model("test_vit").state_dict(), spec)
    r, db = bench([backbone, "wce", "--data", str(tiny_store), "--pretrained", spec], tmp_path)
    assert r.exit_code != 0 and "Traceback" not in r.output
    message = r.output.strip()
    assert message.startswith("Error:") and all(w in message for w in words), message
    assert not db.exists() or ResultsDB(db).query(status=None) == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("epochs.csv"))


def test_none_published_and_a_missing_file():
    assert resolve_weights("none", "resnet50").is_random and resolve_weights(None, "resnet50").is_random
    with pytest.raises(ConfigError, match="no published weights are registered for 'test_tiny'"):
        resolve_weights("published", "test_tiny")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_weights("/nowhere/w.pth", "resnet50")
    with pytest.raises(ConfigError, match="timm has no model 'imagenet'") as e:
        resolve_weights("imagenet", "resnet50")
    assert "pretrained=" not in str(e.value)   # the CLI's words, not the Python API's


def test_a_bare_name_whose_default_tag_is_not_the_published_one_is_said():
    note = default_tag_note("swin_base_patch4_window7_224", "swin_base_patch4_window7_224")
    assert "ms_in22k_ft_in1k" in note and "swin_base_patch4_window7_224.ms_in1k" in note
    assert "resnet50.a1_in1k" in default_tag_note("resnet50", "resnet50")
    assert default_tag_note("resnet50.tv_in1k", "resnet50") is None
    assert default_tag_note("published", "resnet50") is None


def test_an_mae_style_vit_checkpoint_loads_through_timms_converter(tmp_path):
    torch.manual_seed(0)
    vit = timm.create_model("test_vit", img_size=224)      # a 14 x 14 grid; the encoder runs 10 x 10
    sd = dict(vit.state_dict())
    sd.pop("head.weight"), sd.pop("head.bias")
    sd.update({"mask_token": torch.zeros(1, 1, sd["cls_token"].shape[-1]),
               "decoder_embed.weight": torch.zeros(8, sd["cls_token"].shape[-1]),
               "decoder_blocks.0.norm1.weight": torch.ones(8), "decoder_pred.weight": torch.zeros(768, 8)})
    path = tmp_path / "mae-face.pth"
    torch.save({"model": sd, "epoch": 399}, path)
    enc = create_encoder("test_vit", 12, pretrained=str(path))
    model = enc.backbone.model
    assert torch.equal(model.blocks[0].attn.qkv.weight, sd["blocks.0.attn.qkv.weight"])
    assert model.pos_embed.shape[1] == 1 + 10 * 10 != sd["pos_embed"].shape[1]
    assert enc.config.weights == str(path) and enc.config.weights_sha256 == sha256_file(path)


def test_weights_cli_lists_verifies_and_refuses_offline_fetch(offline, tmp_path):
    _, path, _ = offline
    runner = CliRunner()
    r = runner.invoke(cli, ["weights", "list", "--json"])
    assert r.exit_code == 0, r.output
    listing = json.loads(r.output)
    assert {w["backbone"]: w["tag"] for w in listing["weights"]}["swin_base_patch4_window7_224"] == \
        "swin_base_patch4_window7_224.ms_in1k"
    assert not any(w["cached"] for w in listing["weights"])
    (mine,) = json.loads(runner.invoke(cli, ["weights", "list", TAG, "--json"]).output)["weights"]
    assert mine["cached"] and mine["file"] == str(path)
    r = runner.invoke(cli, ["weights", "verify", TAG, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["status"] == "ok", r.output
    r = runner.invoke(cli, ["weights", "fetch", "resnet18"])
    assert r.exit_code != 0 and "austack weights fetch resnet18.tv_in1k" in r.output


def test_verify_finds_a_changed_cached_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path, _ = cache_timm_weights(tmp_path, TAG, seed=1)
    with open(path.resolve(), "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\1")
    r = CliRunner().invoke(cli, ["weights", "verify", TAG, "--json"])
    assert r.exit_code != 0 and '"mismatch"' in r.output


def test_embed_dim_sets_the_per_au_width(tiny_store, tmp_path):
    r, db = bench(["test_tiny", "wce", "--data", str(tiny_store), "--embed-dim", "24", "--pretrained", "none"],
                  tmp_path)
    assert r.exit_code == 0, r.output
    (row,) = ResultsDB(db).query()
    assert row.config["embed_dim"] == 24 and row.provenance["weights"]["kind"] == "none"
    assert torch.load(row.detector, weights_only=True)["encoder"]["embed_dim"] == 24
