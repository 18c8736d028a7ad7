"""A Hugging Face hub cache filled offline, laid out as huggingface_hub writes it.

`cache_timm_weights(hf_home, "test_resnet.r160_in1k")` saves the model's own initialisation
under a fixed seed (trainable, unlike plain noise) as
`hub/models--timm--<name>/snapshots/<rev>/model.safetensors`, a link to `blobs/<sha256>`,
with `refs/main` naming the revision: what `hf_hub_download(..., local_files_only=True)` reads.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

REVISION = "0123456789abcdef0123456789abcdef01234567"


def cache_timm_weights(hf_home: Path, tag: str, *, seed: int = 0) -> tuple[Path, dict]:
    """(the cached file, its state dict) for timm tag `tag` under `hf_home`."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model(tag.partition(".")[0], pretrained=False)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    repo = Path(hf_home) / "hub" / f"models--timm--{tag}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    tmp = repo / "blobs" / "incoming"
    save_file(state, str(tmp))
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    blob = repo / "blobs" / sha
    tmp.replace(blob)
    snap = repo / "snapshots" / REVISION
    snap.mkdir(parents=True, exist_ok=True)
    link = snap / "model.safetensors"
    if not link.exists():
        os.symlink(os.path.relpath(blob, snap), link)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    return link, state
