"""AUEncoder = backbone tokens -> LinearBlock(C -> d) -> per-AU head; and its factory.

`create_encoder("resnet50", 12)` builds a random-init ResNet-50 with the ANFL head; a head
other than the default is named as a tag, `create_encoder("resnet50.anfl", 12)`. Options left
at None keep the encoder's defaults (d = C/4 for ResNet, C/2 for Swin; K from the AU count),
so an unset CLI flag never overrides them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from .anfl import HEADS, LinearBlock
from .backbones import ENCODERS, build_backbone
from .pretrained import ResolvedWeights, resolve_weights
from .weights import load_backbone_weights

DEFAULT_HEAD = "anfl"
RANDOM_INIT = "random"


class EncoderOutput(NamedTuple):
    embeddings: torch.Tensor   # [B, n_au, d]: V', the post-ReLU node features (not normalised)
    probs: torch.Tensor        # [B, n_au]: cosine(V'_i, ReLU(s_i)), in [0, 1]


@dataclass(frozen=True)
class EncoderConfig:
    """What an encoder is and what its inputs must look like; stored with every result."""

    name: str                        # backbone name as asked, e.g. "resnet50"
    head: str
    n_au: int
    backbone_dim: int                # C
    embed_dim: int                   # d
    graph_k: int
    input_size: tuple[int, int]
    mean: tuple[float, float, float]   # normalisation the weights expect
    std: tuple[float, float, float]
    weights: str                     # "random", the timm tag, or the resolved path of the weight file
    weights_sha256: str | None
    published_init: str              # what the published numbers started from ("" if none)
    weights_file: str | None = None  # the file the weights came from (a tag's cached file)
    weights_size: int | None = None  # its size in bytes

    def to_dict(self) -> dict:
        return asdict(self)


class AUEncoder(nn.Module):
    """forward(x [B,3,H,W] normalised) -> EncoderOutput(embeddings [B,n_au,d], probs [B,n_au])."""

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: nn.Module, config: EncoderConfig):
        super().__init__()
        self.backbone, self.neck, self.head = backbone, neck, head
        self.config = config

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        return EncoderOutput(*self.head(self.neck(self.backbone(x))))

    @property
    def pretrained_note(self) -> str:
        c = self.config
        if c.weights == RANDOM_INIT and not c.published_init:
            return f"RANDOM INITIALISATION: {c.name} is a test encoder; its numbers mean nothing."
        if c.weights == RANDOM_INIT:
            return (f"RANDOM INITIALISATION: {c.name} starts from random weights, while published "
                    f"numbers start from {c.published_init} weights; results are not comparable "
                    f"to them. Start from weights with --pretrained published (a timm tag or a file "
                    f"also works).")
        return f"{c.name} backbone weights from {c.weights} (sha256 {c.weights_sha256})"


def create_encoder(name: str, n_au: int, *, pretrained: str | ResolvedWeights | None = None,
                   graph_k: int | None = None,
                   embed_dim: int | None = None, **kwargs) -> AUEncoder:
    """Build an encoder by backbone name (`list_encoders()` or any timm model) and AU count.

    pretrained: what the backbone starts from (`pretrained.resolve_weights`): a local weight
        file, a timm tag `ARCH.TAG`, "published", or "none"/None for random initialisation.
    graph_k: K of the AU graph (default 4 for 12+ AUs, 3 below).
    embed_dim: d (default C/4 for convolutional backbones, C/2 for token backbones).
    Other keyword arguments go to the backbone (e.g. `img_size=112` for Swin); None is dropped.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    arch, sep, tag = name.rpartition(".")
    if sep and tag in HEADS:
        head_name = tag
    else:   # a timm weight tag such as "resnet18.a1_in1k" stays part of the name
        arch, head_name = name, DEFAULT_HEAD
    backbone = build_backbone(arch, **kwargs)
    c = backbone.num_features
    d = int(embed_dim) if embed_dim is not None else c // backbone.embed_ratio
    head = HEADS.get(head_name)(n_au, d, graph_k=graph_k)

    resolved = pretrained if isinstance(pretrained, ResolvedWeights) else resolve_weights(pretrained, name)
    if not resolved.is_random:
        load_backbone_weights(getattr(backbone, "model", backbone), resolved.path)

    config = EncoderConfig(
        name=arch, head=head_name, n_au=n_au, backbone_dim=c, embed_dim=d, graph_k=head.graph_k,
        input_size=tuple(backbone.input_size), mean=tuple(backbone.mean), std=tuple(backbone.std),
        weights=resolved.label, weights_sha256=resolved.sha256, published_init=backbone.published_init,
        weights_file=resolved.path, weights_size=resolved.size)
    return AUEncoder(backbone, LinearBlock(c, d), head, config)


def list_encoders(pattern: str = "*") -> list[str]:
    """Registered encoder names matching the fnmatch `pattern` (any timm name also builds)."""
    return ENCODERS.list(pattern)
