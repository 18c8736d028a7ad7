"""Encoders: registry walk, sizes against the published table, the ANFL head, local weights."""
from __future__ import annotations

import hashlib
import math

import pytest
import torch

from austack.errors import ConfigError, UnknownNameError
from austack.models import (AUEncoder, create_encoder, default_graph_k, list_encoders, list_heads)
from austack.models.anfl import AUFeatureGenerator, FacialGraph, LinearBlock

# Parameter counts (millions) for 12 AUs from the published sizes table: backbone, d, with ANFL.
# Ours land on the same 0.01 M: timm backbones without classifier match the published ones,
# and the head has the same layers (the batched AFG weight holds exactly n_au d x d blocks).
PUBLISHED = {
    "resnet18": (11.18, 128, 11.48),
    "resnet50": (23.51, 512, 28.25),
    "swin_tiny_patch4_window7_224": (27.52, 384, 29.90),
    "swin_base_patch4_window7_224": (86.74, 512, 90.96),
}


def n_params(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_the_published_table(name):
    with torch.device("meta"):    # sizes only: no memory, no init time
        enc = create_encoder(name, 12)
    backbone, d, total = PUBLISHED[name]
    assert enc.config.embed_dim == d
    assert n_params(enc.backbone) == pytest.approx(backbone, abs=0.01)
    assert n_params(enc) == pytest.approx(total, abs=0.01)


@pytest.mark.parametrize("name", list_encoders())
def test_every_registered_encoder_builds_with_its_config(name):
    with torch.device("meta"):
        enc = create_encoder(name, 8)
    c = enc.config
    assert c.n_au == 8 and c.graph_k == 3 and c.head == "anfl" and c.weights == "random"
    assert c.embed_dim == c.backbone_dim // (2 if name.startswith("swin") else 4)
    assert c.mean == (0.485, 0.456, 0.406) and c.std == (0.229, 0.224, 0.225)
    assert "RANDOM INITIALISATION" in enc.pretrained_note


@pytest.mark.parametrize("name,size,stride,backward", [
    ("test_tiny", 64, 16, True), ("resnet18", 112, 32, True), ("swin_tiny_patch4_window7_224", 224, 32, False)])
def test_forward_shapes_ranges_and_backward(name, size, stride, backward):
    torch.manual_seed(0)
    enc = create_encoder(name, 12)
    x = torch.randn(2, 3, size, size)
    tokens = []
    enc.backbone.register_forward_hook(lambda m, i, o: tokens.append(o.shape))
    if backward:
        out = enc(x)
        (out.probs.sum() + out.embeddings.mean()).backward()
        grads = [p.grad for p in enc.parameters() if p.requires_grad]
        assert all(g is not None for g in grads) and all(torch.isfinite(g).all() for g in grads)
    else:
        with torch.no_grad():
            out = enc.eval()(x)
    d, c = enc.config.embed_dim, enc.config.backbone_dim
    assert tokens == [(2, math.ceil(size / stride) ** 2, c)]   # final map, flattened (Swin: NHWC, ResNet: NCHW)
    assert out.embeddings.shape == (2, 12, d) and out.probs.shape == (2, 12)
    assert (out.embeddings >= 0).all()
    assert (out.probs >= 0).all() and (out.probs <= 1 + 1e-6).all()


def test_per_au_generator_equals_one_linear_block_per_au():
    torch.manual_seed(0)
    afg = AUFeatureGenerator(3, 8)
    tokens = torch.randn(4, 5, 8)
    expected = []
    for a in range(3):
        block = LinearBlock(8, 8)
        block.fc.weight.data = afg.weight[a].detach().T.clone()
        block.fc.bias.data = afg.bias[a].detach().clone()
        expected.append(block(tokens).mean(dim=1))
    assert torch.allclose(afg(tokens), torch.stack(expected, dim=1), atol=1e-5)


def test_graph_links_each_au_to_its_k_most_similar():
    torch.manual_seed(0)
    fgg = FacialGraph(6, 4, k=3)
    v = torch.rand(2, 6, 4)
    a_hat = fgg.adjacency(v)
    a = (a_hat > 0).float()
    assert torch.equal(a.sum(-1), torch.full((2, 6), 3.0))
    assert torch.allclose(a_hat, a / 3)        # D^-1/2 A D^-1/2 with every degree K
    sim = v @ v.transpose(1, 2)
    assert torch.equal(a.bool(), sim >= sim.topk(3, dim=-1).values[..., -1:])
    assert [default_graph_k(n) for n in (12, 24, 10, 8, 2)] == [4, 4, 3, 3, 2]
    assert create_encoder("test_tiny", 12, graph_k=2).config.graph_k == 2


def test_names_tags_and_unknown_names():
    assert create_encoder("test_tiny.anfl", 5).config.head == "anfl"
    assert list_heads() == ["anfl"] and list_encoders("swin*")[0].startswith("swin")
    with pytest.raises(UnknownNameError, match="did you mean 'resnet18'"):
        create_encoder("resnet19", 12)
    enc = create_encoder("test_tiny", 12, embed_dim=None, graph_k=None, img_size=None)   # None is dropped
    assert enc.config.embed_dim == 16


def test_local_weights_load_with_their_sha256(tmp_path):
    torch.manual_seed(1)
    source = create_encoder("test_tiny", 12)
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": source.state_dict()}, path)   # an austack checkpoint
    enc = create_encoder("test_tiny", 12, pretrained=str(path))
    for k, v in source.backbone.state_dict().items():
        assert torch.equal(enc.backbone.state_dict()[k], v)
    assert enc.config.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert str(path) in enc.pretrained_note and "RANDOM" not in enc.pretrained_note


def test_imagenet_style_weights_drop_the_classifier(tmp_path):
    import timm
    path = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), path)
    enc = create_encoder("resnet18", 12, pretrained=str(path))
    assert isinstance(enc, AUEncoder) and enc.config.weights == str(path)


def test_bad_weight_files_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        create_encoder("test_tiny", 12, pretrained=str(tmp_path / "none.pth"))
    partial = {k: v for k, v in create_encoder("test_tiny", 12).backbone.state_dict().items() if "body.0" not in k}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(ConfigError, match=r"lacks \d+ tensor\(s\) .*body\.0\.weight"):
        create_encoder("test_tiny", 12, pretrained=str(tmp_path / "partial.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read weight file"):
        create_encoder("test_tiny", 12, pretrained=str(tmp_path / "junk.pth"))
