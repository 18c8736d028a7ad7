"""Loading a local weight file into a backbone: no hub, no download.

Accepted files: a plain state dict (`.pth`/`.pt`/`.bin`, or `.safetensors`), or a checkpoint
holding one under `state_dict`, `model` or `state_dict_ema` (timm, torchvision and austack
checkpoints). A `module.` prefix (DataParallel) is removed; an austack encoder checkpoint
contributes its `backbone.model.` (or `backbone.`) entries. timm's own converter for the
architecture runs first, so official release files (e.g. original Swin weights) load as timm
would load them.

Missing backbone keys are an error that lists them; extra keys (the ImageNet classifier) are
reported in the returned record and otherwise ignored.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..fileio import sha256_file
from ..errors import ConfigError

_CONTAINER_KEYS = ("state_dict_ema", "state_dict", "model")
_OWN_PREFIXES = ("backbone.model.", "backbone.")


@dataclass(frozen=True)
class LoadedWeights:
    path: str
    sha256: str
    n_tensors: int
    ignored_keys: tuple[str, ...]   # in the file, not in the backbone (e.g. fc.weight)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or foreign file: say which and why
        raise ConfigError(f"cannot read weight file {path}: {e}; pass a torch state dict or "
                          f"checkpoint (.pth/.pt) or a .safetensors file", path=path) from None
    for key in _CONTAINER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"weight file {path} holds no state dict (a mapping of names to tensors)",
                          path=path)
    sd = {k.removeprefix("module."): v for k, v in obj.items()}
    for prefix in _OWN_PREFIXES:
        own = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if own:
            return own
    return sd


def load_backbone_weights(module: nn.Module, path: str | Path) -> LoadedWeights:
    """Load `path` into `module` (a timm model or any backbone); strict about missing keys."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"weight file {path} does not exist; pass pretrained=<a local .pth or "
                          f".safetensors file> or leave it unset for random initialisation", path=path)
    sd = _read_state_dict(path)
    convert = getattr(sys.modules.get(type(module).__module__), "checkpoint_filter_fn", None)
    if convert is not None:
        sd = convert(sd, module)
    try:
        result = module.load_state_dict(sd, strict=False)
    except RuntimeError as e:   # shape mismatches: another architecture's weights
        raise ConfigError(f"weight file {path} does not fit {type(module).__name__}: {e}", path=path) from None
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing:
        shown = ", ".join(missing[:8]) + (f" ... ({len(missing)} in all)" if len(missing) > 8 else "")
        raise ConfigError(f"weight file {path} lacks {len(missing)} tensor(s) of "
                          f"{type(module).__name__}: {shown}; is it for another architecture?", path=path)
    return LoadedWeights(str(path), sha256_file(path), len(sd), tuple(result.unexpected_keys))
