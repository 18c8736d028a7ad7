"""Loading a local weight file into a backbone: no hub, no download.

Accepted files: a plain state dict (`.pth`/`.pt`/`.bin`, or `.safetensors`), or a checkpoint
holding one under `state_dict`, `model` or `state_dict_ema` (timm, torchvision and austack
checkpoints). A `module.` prefix (DataParallel) is removed; an austack encoder checkpoint
contributes its `backbone.model.` (or `backbone.`) entries. timm's own converter for the
architecture runs first, so official release files (e.g. original Swin weights) load as timm
would load them. MAE-style ViT checkpoints (MAE-Face, FMAE: the encoder under `model`, beside
the pre-training decoder and mask token) lose the decoder first; timm's converter then resamples
the position embedding to the model's grid.

Missing backbone keys are an error that lists them; extra keys (the ImageNet classifier) are
reported in the returned record and otherwise ignored.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError

_CONTAINER_KEYS = ("state_dict_ema", "state_dict", "model")
_OWN_PREFIXES = ("backbone.model.", "backbone.")
_MAE_EXTRAS = ("decoder", "mask_token")   # MAE pre-training only: not part of the encoder


@dataclass(frozen=True)
class LoadedWeights:
    path: str
    sha256: str
    n_tensors: int
    ignored_keys: tuple[str, ...]   # in the file, not in the backbone (e.g. fc.weight)


def _is_safetensors(path: Path) -> bool:
    """By name, or by content (a hub cache blob has no suffix): an 8-byte length, then JSON."""
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if _is_safetensors(path):
            from safetensors.torch import load_file
            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or foreign file: say which and why
        why = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ConfigError(f"cannot read weight file {path}: {why[:160]}; pass a torch state dict or "
                          f"checkpoint (.pth/.pt) or a .safetensors file", path=path) from None
    for key in _CONTAINER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"weight file {path} holds no state dict (a mapping of names to tensors)",
                          path=path)
    sd = {k.removeprefix("module."): v for k, v in obj.items()}
    if "decoder_embed.weight" in sd:   # an MAE pre-training checkpoint: keep the encoder
        sd = {k: v for k, v in sd.items() if not k.startswith(_MAE_EXTRAS)}
    for prefix in _OWN_PREFIXES:
        own = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if own:
            return own
    return sd


def load_backbone_weights(module: nn.Module, path: str | Path) -> LoadedWeights:
    """Load `path` into `module` (a timm model or any backbone); strict about missing keys."""
    from .pretrained import file_sha256

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"weight file {path} does not exist; pass an existing .pth or .safetensors "
                          f"file, a timm tag ARCH.TAG, published or none", path=path)
    sd = _read_state_dict(path)
    name = getattr(module, "default_cfg", {}).get("architecture") or type(module).__name__
    convert = getattr(sys.modules.get(type(module).__module__), "checkpoint_filter_fn", None)
    try:
        if convert is not None:
            sd = convert(sd, module)
        result = module.load_state_dict(sd, strict=False)
    except Exception as e:   # shape mismatches or a converter that cannot read it: another architecture
        first = str(e).strip().splitlines()
        detail = next((ln.strip() for ln in first if "size mismatch" in ln), first[0] if first else type(e).__name__)
        raise ConfigError(f"weight file {path} does not fit {name} ({detail}); is it for another "
                          f"architecture?", path=path) from None
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing:
        shown = ", ".join(missing[:4]) + (f" ... ({len(missing)} in all)" if len(missing) > 4 else "")
        raise ConfigError(f"weight file {path} lacks {len(missing)} tensor(s) of {name}: {shown}; is it "
                          f"for another architecture?", path=path)
    st = path.stat()
    return LoadedWeights(str(path), file_sha256(str(path), st.st_size, st.st_mtime_ns), len(sd),
                         tuple(result.unexpected_keys))
