"""Backbones that turn images [B, 3, H, W] into a token map [B, T, C].

Every backbone module exposes `num_features` (C), `embed_ratio` (d = C // ratio for the
LinearBlock in front of the head), `mean`/`std` (the normalisation its weights expect),
`input_size` and `published_init` (what the published numbers started from).

Registered names are built by their entry below; any other timm model name that yields a
feature map or token sequence works too through `TimmTokens`. timm models are always built with
random weights (`pretrained=False`): nothing is downloaded, local weights load separately.
"""
from __future__ import annotations

from typing import Callable

import timm
import torch
from torch import nn

from ..errors import UnknownNameError, did_you_mean
from ..registry import Registry

from timm.data import IMAGENET_DEFAULT_MEAN as IMAGENET_MEAN, IMAGENET_DEFAULT_STD as IMAGENET_STD  # noqa: E402

# d = C / ratio: C/4 for convolutional maps (ResNet), C/2 for transformer tokens (Swin, ViT).
EMBED_RATIO = {"conv": 4, "tokens": 2}

ENCODERS: Registry[Callable[..., nn.Module]] = Registry("encoder")
register_encoder = ENCODERS.register


class TimmTokens(nn.Module):
    """A timm model without pooling or classifier, returning its final tokens [B, T, C].

    Convolutional maps (NCHW, ResNet layer4) and channels-last maps (NHWC, the normed Swin
    output) are flattened over H*W; token sequences (ViT) lose their class/prefix tokens.
    """

    def __init__(self, timm_name: str, *, published_init: str = "ImageNet", **timm_kwargs):
        super().__init__()
        self.timm_name = timm_name
        self.model = timm.create_model(timm_name, pretrained=False, num_classes=0, global_pool="",
                                       **timm_kwargs)
        cfg = self.model.pretrained_cfg
        fmt = getattr(self.model, "output_fmt", "NCHW")
        self.layout = str(getattr(fmt, "value", fmt))
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0))
        self.num_features = int(self.model.num_features)
        self.embed_ratio = EMBED_RATIO["conv" if self.layout == "NCHW" else "tokens"]
        self.mean = tuple(cfg.get("mean", IMAGENET_MEAN))
        self.std = tuple(cfg.get("std", IMAGENET_STD))
        size = timm_kwargs.get("img_size", cfg.get("input_size", (3, 224, 224))[1:])
        self.input_size = (size, size) if isinstance(size, int) else tuple(size)
        self.published_init = published_init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.model.forward_features(x)
        if f.ndim == 4 and self.layout == "NHWC":
            return f.flatten(1, 2)
        if f.ndim == 4:
            return f.flatten(2).transpose(1, 2)
        return f[:, self.num_prefix_tokens:]


class TinyConvBackbone(nn.Module):
    """Four strided 3x3 conv layers (~60 k parameters): the whole encoder path in milliseconds.

    For tests and smoke runs only; its numbers mean nothing.
    """

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 64)):
        super().__init__()
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True)]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.num_features = c_in
        self.embed_ratio = EMBED_RATIO["conv"]
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        self.input_size = (224, 224)
        self.published_init = ""   # no published numbers use it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(2).transpose(1, 2)


def _timm_entry(timm_name: str) -> Callable[..., nn.Module]:
    def build(**kwargs) -> nn.Module:
        return TimmTokens(timm_name, **kwargs)
    build.__name__ = build.__qualname__ = timm_name
    build.__doc__ = f"timm {timm_name}, final tokens."
    return build


# The backbones of the published ANFL/AUNCE tables (models.md sizes), by timm name.
for _name in ("resnet18", "resnet50", "resnet101", "swin_tiny_patch4_window7_224",
              "swin_small_patch4_window7_224", "swin_base_patch4_window7_224"):
    register_encoder(_name)(_timm_entry(_name))


@register_encoder("test_tiny")
def test_tiny(**kwargs) -> nn.Module:
    """A tiny conv backbone so the CPU test suite covers the full encoder path in seconds."""
    return TinyConvBackbone(**kwargs)


def build_backbone(name: str, **kwargs) -> nn.Module:
    """A registered backbone, or any timm model name; unknown names list the closest ones."""
    if name in ENCODERS:
        return ENCODERS.get(name)(**kwargs)
    if timm.is_model(name):
        return TimmTokens(name, **kwargs)
    hint = did_you_mean(name, ENCODERS.list() + timm.list_models(), cutoff=0.6)
    raise UnknownNameError(f"unknown encoder {name!r}{hint} (registered: {', '.join(ENCODERS.list())}; "
                           f"any timm model name also works)")
