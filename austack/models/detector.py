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

import math
import os
import pickle
import warnings
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
        if not all(0.0 <= t <= 1.0 for t in self.thresholds):   # NaN would turn every decision into 0
            raise ConfigError(f"thresholds must lie in [0, 1], got {self.thresholds}")
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
        """The file, then its sha256 beside it (`detector.pt.sha256`, sha256sum's format),
        which every load checks. The old digest goes first: a kill between the two writes
        leaves a file without a digest, never one with another file's."""
        from ..fileio import atomic_torch_save, atomic_write_text, sha256_file

        path = Path(path)
        digest_path(path).unlink(missing_ok=True)
        atomic_torch_save(self.to_file_dict(), path)
        atomic_write_text(digest_path(path), f"{sha256_file(path)}  {path.name}\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "Detector":
        return load_detector(path, map_location)


def load_detector(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
                  sha256: str | None = None) -> Detector:
    """Rebuild a detector saved by `Detector.save` (as every `austack bench` fold does).

    The file's bytes must match `sha256`, or else the digest `save` wrote beside it
    (`detector.pt.sha256`) where there is one. Anything in the file
    that does not fit (another architecture, a tensor of another shape, a missing key, an AU
    list that is not the network's output, thresholds outside [0, 1]) is one ConfigError
    naming the file, never a traceback."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"no detector file at {path}; `austack bench` saves one per fold as "
                          f"{fold_dir('<run dir>', '<k>') / DETECTOR_NAME}", path=path)
    sha256 = sha256 or recorded_digest(path)
    if sha256:
        from ..fileio import sha256_file

        if sha256_file(path) != sha256:
            raise ConfigError(f"{path} changed since it was recorded (sha256 differs); rerun the fold that "
                              "saved it", path=path)
    try:
        with warnings.catch_warnings():   # torch warns in several lines about a foreign pickle's protocol
            warnings.simplefilter("ignore")
            d = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:   # torch's own message: lines of advice to load it unsafely
        reason = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines()
        reason = reason[0][:120] if reason and "WeightsUnpickler" in str(e) else "not a tensors-only pickle"
        raise ConfigError(f"{path} is not a readable detector file: it is not an austack detector file (the "
                          f"tensors-only loader stops at: {reason}); austack never loads a file unsafely",
                          path=path) from None
    except Exception as e:   # torch raises many kinds on a torn or foreign file
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"{path} is not a readable detector file ({type(e).__name__}: {first})",
                          path=path) from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an austack detector file", path=path)
    if d.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path} is detector format {d.get('format_version')} (austack "
                          f"{d.get('austack_version')}); this austack reads format {FORMAT_VERSION}",
                          path=path)
    try:
        det = _build(d)
    except Exception as e:   # a file that fits no network: say which file and what does not fit
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(f"{path} is a damaged or mismatched detector file: {first}; use the detector.pt "
                          "that `austack bench` saved", path=path) from None
    return det.to(map_location).eval()


def digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def recorded_digest(path: Path) -> str | None:
    """The sha256 saved beside a detector file, if any (an older austack saved none)."""
    try:
        text = digest_path(path).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    return text[0].lower() if text and len(text[0]) == 64 else None


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _state(value, what: str) -> dict:
    _need(isinstance(value, dict) and all(isinstance(k, str) and isinstance(t, torch.Tensor)
                                          for k, t in value.items()), f"{what} is not a table of tensors")
    bad = [k for k, t in value.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    _need(not bad, f"{what} holds NaN or infinite values ({', '.join(bad[:3])})")
    return value


def _build(d: dict) -> Detector:
    """The detector a file describes, every field checked against the network it builds."""
    missing = [k for k in ("encoder", "encoder_state", "heads_state", "aus", "thresholds", "preprocess",
                                "info") if k not in d]
    _need(not missing, f"keys missing: {', '.join(missing)}")
    e = d["encoder"]
    _need(isinstance(e, dict), "no encoder description")
    _need(isinstance(e.get("name"), str), "the encoder has no name")
    for key in ("n_au", "embed_dim"):
        _need(_is_int(e.get(key)) and e[key] > 0, f"encoder {key} is {e.get(key)!r}, not a positive whole number")
    _need(e.get("graph_k") is None or (_is_int(e["graph_k"]) and e["graph_k"] > 0),
          f"encoder graph_k is {e.get('graph_k')!r}")
    aus, thresholds = d.get("aus"), d.get("thresholds")
    _need(isinstance(aus, list) and all(_is_int(a) and a > 0 for a in aus), "the AU list is not a list of AU numbers")
    _need(len(aus) == e["n_au"], f"{len(aus)} AUs listed for a network with {e['n_au']} outputs")
    _need(isinstance(thresholds, list) and len(thresholds) == len(aus)
          and all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in thresholds),
          f"the thresholds are not {len(aus)} numbers")
    _need(all(0.0 <= t <= 1.0 for t in thresholds), "a threshold is NaN or outside [0, 1]")
    p = d.get("preprocess")
    _need(isinstance(p, dict) and _is_int(p.get("crop")) and p["crop"] > 0
          and (p.get("resize") is None or _is_int(p["resize"])), "the preprocessing (crop, resize) is malformed")
    for key in ("mean", "std"):
        v = p.get(key)
        _need(isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) and math.isfinite(x)
                                                          for x in v), f"preprocess {key} is not 3 numbers")
    _need(all(x > 0 for x in p["std"]), "preprocess std is not positive")
    _need(isinstance(d.get("info", {}), dict), "info is not a table")
    encoder = create_encoder(e["name"], e["n_au"], embed_dim=e["embed_dim"], graph_k=e["graph_k"])
    encoder.load_state_dict(_state(d.get("encoder_state"), "encoder_state"))
    heads = None
    if d.get("heads_state") is not None:
        heads = LinearHeads(e["n_au"], e["embed_dim"])
        heads.load_state_dict(_state(d["heads_state"], "heads_state"))
    return Detector(encoder, heads, aus=aus, thresholds=thresholds, preprocess=EvalPreprocess.from_dict(p),
                    info=d.get("info") or {})


def _plain(value: Any) -> Any:
    """Tuples to lists, numpy scalars to Python: what weights_only loading accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    return value
