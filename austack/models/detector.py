"""A trained AU detector as one self-describing file: `Detector.save(path)`, `load_detector(path)`.

A detector is an encoder (backbone + per-AU graph head) and, for losses evaluated by a linear
probe (AUNCE), the fitted per-AU linear heads; plus everything needed to apply it to a new
face: the AU list with names, the decision thresholds, the evaluation preprocessing (resize,
centre crop, normalisation), the alignment the faces must have, and where it came from
(dataset, protocol, store identity, fold, config hash). The file holds only tensors and plain
values, so it loads with `torch.load(weights_only=True)`: opening a detector file never runs
code from it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .. import __version__
from ..errors import ConfigError
from ..data.preprocess import EvalPreprocess
from ..facs import au_name
from ..runs.rundir import DETECTOR_NAME, fold_dir
from .encoder import AUEncoder, create_encoder

FORMAT = "austack-detector"
FORMAT_VERSION = 1


class LinearHeads(nn.Module):
    """One logistic classifier per AU, each on its own AU's embedding: [B, n_au, d] -> probs."""

    def __init__(self, n_au: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_au, dim))
        self.bias = nn.Parameter(torch.zeros(n_au))
        nn.init.normal_(self.weight, std=dim ** -0.5)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.einsum("bad,ad->ba", z.float(), self.weight) + self.bias)


class Detector(nn.Module):
    """forward(x normalised [B,3,H,W]) -> probabilities [B, n_au]; `predict(uint8 faces)` adds the
    detector's own evaluation preprocessing. `thresholds` turn probabilities into 0/1."""

    def __init__(self, encoder: AUEncoder, heads: LinearHeads | None, *, aus: Sequence[int],
                 thresholds: Sequence[float] | None = None, preprocess: EvalPreprocess,
                 info: dict[str, Any] | None = None):
        super().__init__()

        self.encoder, self.heads = encoder, heads
        self.aus = [int(a) for a in aus]
        self.thresholds = [0.5] * len(self.aus) if thresholds is None else [float(t) for t in thresholds]
        if len(self.thresholds) != len(self.aus):
            raise ConfigError(f"{len(self.thresholds)} thresholds for {len(self.aus)} AUs")
        self.preprocess_spec = preprocess.to_dict()      # as saved, and as `predict` reports it
        self.preprocess = preprocess.module()
        self.info = dict(info or {})

    @property
    def au_names(self) -> list[str]:
        return [au_name(a) for a in self.aus]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.encoder(x)
        return out.probs if self.heads is None else self.heads(out.embeddings)

    @torch.no_grad()
    def predict(self, faces: torch.Tensor) -> torch.Tensor:
        """uint8 aligned faces [B, 3, S, S] (on the detector's device) -> probabilities [B, n_au]."""
        self.eval()
        x = self.preprocess(faces)
        if x.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self(x.contiguous(memory_format=torch.channels_last)).float()
        return self(x).float()

    def predict_images(self, images, **options):
        """Per-face predictions for image files, folders or RGB arrays (`austack.inference`)."""
        from ..inference import predict_images
        return predict_images(self, images, **options)

    def predict_video(self, path: str | os.PathLike, **options):
        """Per-frame predictions for a video, the face tracked as in prepare (`austack.inference`)."""
        from ..inference import predict_video
        return predict_video(self, path, **options)

    def decide(self, probs: torch.Tensor) -> torch.Tensor:
        """0/1 occurrence at the detector's per-AU thresholds."""
        t = torch.as_tensor(self.thresholds, dtype=probs.dtype, device=probs.device)
        return (probs >= t).to(torch.uint8)

    def to_file_dict(self) -> dict[str, Any]:
        c = self.encoder.config
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "austack_version": __version__,
            "encoder": {"name": f"{c.name}.{c.head}", "n_au": c.n_au, "embed_dim": c.embed_dim,
                        "graph_k": c.graph_k, "init": c.weights, "init_sha256": c.weights_sha256,
                        "init_file": c.weights_file, "init_size": c.weights_size},
            "encoder_state": self.encoder.state_dict(),
            "heads_state": None if self.heads is None else self.heads.state_dict(),
            "aus": list(self.aus), "au_names": self.au_names, "thresholds": list(self.thresholds),
            "preprocess": _plain(self.preprocess_spec), "info": _plain(self.info),
        }

    def save(self, path: str | os.PathLike) -> Path:
        from ..fileio import atomic_torch_save
        return atomic_torch_save(self.to_file_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "Detector":
        return load_detector(path, map_location)


def load_detector(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Detector:
    """Rebuild a detector saved by `Detector.save` (as every `austack bench` fold does)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"no detector file at {path}; `austack bench` saves one per fold as "
                          f"{fold_dir('<run dir>', '<k>') / DETECTOR_NAME}", path=path)
    try:
        d = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:   # torch raises many kinds on a torn or foreign file
        raise ConfigError(f"{path} is not a readable detector file ({type(e).__name__}: {e})",
                          path=path) from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an austack detector file", path=path)
    if d.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path} is detector format {d.get('format_version')} (austack "
                          f"{d.get('austack_version')}); this austack reads format {FORMAT_VERSION}",
                          path=path)
    e = d["encoder"]
    encoder = create_encoder(e["name"], e["n_au"], embed_dim=e["embed_dim"], graph_k=e["graph_k"])
    encoder.load_state_dict(d["encoder_state"])
    heads = None
    if d["heads_state"] is not None:
        heads = LinearHeads(e["n_au"], e["embed_dim"])
        heads.load_state_dict(d["heads_state"])
    det = Detector(encoder, heads, aus=d["aus"], thresholds=d["thresholds"],
                   preprocess=EvalPreprocess.from_dict(d["preprocess"]), info=d["info"])
    return det.to(map_location).eval()


def _plain(value: Any) -> Any:
    """Tuples to lists, numpy scalars to Python: what weights_only loading accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    return value
