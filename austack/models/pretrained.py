"""What `--pretrained` names, resolved to one weight file: a local file, a timm tag, `published`
or `none`.

- a file path: loaded as is (`weights.load_backbone_weights`);
- a timm tag `ARCH.TAG` (`resnet50.tv_in1k`): the file timm itself would load, found through
  huggingface_hub's standard cache (`HF_HOME`/`HF_HUB_CACHE`); downloaded when online, read from
  the cache when `HF_HUB_OFFLINE=1`, and never replaced by other weights when missing;
- `published`: the tag the backbone's published rows started from (`PUBLISHED_WEIGHTS`);
- `none`: random initialisation, asked for explicitly.

A run records the resolved file's sha256 and size, so one file reached by two paths (a tag and
its cached file, or `published` and its tag) is one experiment.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError, did_you_mean

NONE, PUBLISHED = "none", "published"
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
# timm's hub files, in the order timm tries them (timm.models._hub.load_state_dict_from_hf)
HUB_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class PublishedWeights:
    tag: str          # timm ARCH.TAG
    source: str       # what the published rows used, and where that shows
    sha256: str | None = None   # of timm's hub file, where known; `austack weights verify` checks it


# backbone -> the weights its published rows started from (spec/models.md, "Pretrained weights").
PUBLISHED_WEIGHTS: dict[str, PublishedWeights] = {
    "swin_base_patch4_window7_224": PublishedWeights(
        "swin_base_patch4_window7_224.ms_in1k",
        "Microsoft's swin_base_patch4_window7_224.pth (ImageNet-1k, 83.5% top-1), the file the ME-GraphAU "
        "and AUNCE code load (model/swin_transformer.py)"),
    "swin_small_patch4_window7_224": PublishedWeights(
        "swin_small_patch4_window7_224.ms_in1k", "Microsoft's ImageNet-1k Swin-S release (ME-GraphAU)"),
    "swin_tiny_patch4_window7_224": PublishedWeights(
        "swin_tiny_patch4_window7_224.ms_in1k", "Microsoft's ImageNet-1k Swin-T release (ME-GraphAU)"),
    "resnet18": PublishedWeights("resnet18.tv_in1k", "torchvision's v1 ImageNet weights (ME-GraphAU resnet.py)"),
    "resnet50": PublishedWeights("resnet50.tv_in1k", "torchvision's v1 ImageNet weights (ME-GraphAU resnet.py)"),
    "resnet101": PublishedWeights("resnet101.tv_in1k", "torchvision's v1 ImageNet weights (ME-GraphAU resnet.py)"),
}


@dataclass(frozen=True)
class ResolvedWeights:
    """One `--pretrained` value, resolved: what was asked and the file it came to."""

    spec: str                 # as asked: a path, a tag, "published" or "none"
    kind: str                 # "file" | "tag" | "none"
    tag: str | None = None    # the timm tag (for "published", the tag it stands for)
    path: str | None = None   # the resolved file
    sha256: str | None = None
    size: int | None = None   # bytes

    @property
    def is_random(self) -> bool:
        return self.kind == NONE

    @property
    def label(self) -> str:
        """What the run started from, as results and detector files name it."""
        return "random" if self.is_random else (self.tag or self.path)

    def to_dict(self) -> dict:
        return asdict(self)


def hub_cache_dir() -> Path:
    """huggingface_hub's cache folder, read from the environment now (as the hub reads it)."""
    env = os.environ
    if env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE"):
        return Path(env.get("HF_HUB_CACHE") or env["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE"):
        return True
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE)


def fetch_command(tag: str) -> str:
    return f"austack weights fetch {tag}"


def published_for(backbone: str) -> PublishedWeights:
    arch = backbone_arch(backbone)
    if arch not in PUBLISHED_WEIGHTS:
        raise ConfigError(f"--pretrained published: no published weights are registered for {arch!r} "
                          f"(registered: {', '.join(PUBLISHED_WEIGHTS)}); pass a timm tag ARCH.TAG, a "
                          f"weight file, or none")
    return PUBLISHED_WEIGHTS[arch]


def backbone_arch(backbone: str) -> str:
    """The timm architecture of a backbone name ("resnet50.anfl", "resnet50.a1_in1k" -> "resnet50")."""
    return backbone.partition(".")[0]


def resolve_weights(spec: str | None, backbone: str) -> ResolvedWeights:
    """The file `spec` names for `backbone`, hashed; ConfigError (one line) when it cannot be had."""
    if spec is None or spec.strip().lower() == NONE:
        return ResolvedWeights(spec or NONE, NONE)
    spec = spec.strip()
    if spec.lower() == PUBLISHED:
        tag = published_for(backbone).tag
        return _resolved(spec, "tag", tag, hub_file(tag, backbone))
    path = Path(spec).expanduser()
    if path.is_file():
        return _resolved(spec, "file", None, path.resolve())
    if "/" in spec or os.sep in spec or path.suffix.lower() in WEIGHT_SUFFIXES:
        raise ConfigError(f"--pretrained: weight file {path} does not exist; pass an existing .pth or "
                          f".safetensors file, a timm tag ARCH.TAG, published or none", path=path)
    tag = full_tag(spec)
    return _resolved(spec, "tag", tag, hub_file(tag, backbone))


def _resolved(spec: str, kind: str, tag: str | None, path: Path) -> ResolvedWeights:
    st = path.stat()
    return ResolvedWeights(spec, kind, tag, str(path), file_sha256(str(path), st.st_size, st.st_mtime_ns), st.st_size)


@lru_cache(maxsize=16)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a weight file, hashed once per process (size and mtime: a rewritten file re-hashes)."""
    from ..fileio import sha256_file
    return sha256_file(path)


def full_tag(name: str) -> str:
    """`ARCH.TAG` as timm knows it; a bare `ARCH` becomes timm's default tag for it."""
    import timm
    from timm.models import get_pretrained_cfg

    arch = name.partition(".")[0]
    if not timm.is_model(arch):
        hint = did_you_mean(arch, timm.list_models(), cutoff=0.6)
        raise ConfigError(f"weights {name!r}: not a file, and timm has no model {arch!r}{hint}; pass a "
                          f"weight file, a timm tag ARCH.TAG, published or none")
    known = "." not in name or name in timm.list_pretrained(name)
    cfg = get_pretrained_cfg(name if known else arch)
    if not known or cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        tags = timm.list_pretrained(f"{arch}.*")
        hint = did_you_mean(name, tags, cutoff=0.5)
        raise ConfigError(f"weights {name!r}: timm {timm.__version__} knows no such tag{hint} ({len(tags)} "
                          f"tags for {arch}: python -c \"import timm; print(timm.list_pretrained('{arch}.*'))\")")
    return f"{arch}.{cfg.tag}" if cfg.tag else arch


def hub_file(tag: str, backbone: str | None = None, *, download: bool | None = None) -> Path:
    """The cached file of timm tag `tag`, downloaded first when online (`download` None: unless
    HF_HUB_OFFLINE). Refused, with the command that fetches it, when it cannot be had."""
    from timm.models import get_pretrained_cfg

    tag = full_tag(tag)
    arch = tag.partition(".")[0]
    if backbone is not None and backbone_arch(backbone) != arch:
        raise ConfigError(f"weights {tag} are for {arch}, but the backbone is "
                          f"{backbone_arch(backbone)}; pass a tag of {backbone_arch(backbone)} (or published)")
    cfg = get_pretrained_cfg(tag)
    if not cfg.hf_hub_id:
        raise ConfigError(f"weights {tag}: timm serves this tag from {cfg.url or cfg.file}, not the Hugging "
                          f"Face hub; download that file and pass its path")
    repo, _, revision = cfg.hf_hub_id.partition("@")
    offline = hub_offline() if download is None else not download
    cache = hub_cache_dir()
    return _hub_download(tag, repo, revision or None, cfg.hf_hub_filename, cache, offline)


def _hub_download(tag: str, repo: str, revision: str | None, filename: str | None, cache: Path,
                  offline: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    last: Exception | None = None
    for name in ((filename,) if filename else HUB_FILES):
        try:
            return Path(hf_hub_download(repo, name, revision=revision, cache_dir=str(cache),
                                        local_files_only=offline))
        except (EntryNotFoundError, LocalEntryNotFoundError) as e:   # try timm's next file name
            last = e
        except Exception as e:   # unknown repo, no network, permissions: one line, never a traceback
            last = e
            break
    where = "offline (HF_HUB_OFFLINE=1) and not" if offline else "could not be downloaded and is not"
    text = str(last).splitlines()[0] if last is not None and str(last) else ""
    why = "" if offline else (" (HF_HUB_OFFLINE is set: unset it to download)" if hub_offline()
                              else f" ({type(last).__name__}: {text[:90]})")
    raise ConfigError(f"weights {tag} {where} in the Hugging Face cache {cache}{why}; on a connected machine "
                      f"run `{fetch_command(tag)}` and copy its HF_HOME here (docs/weights.md)", path=cache)


def cached_file(tag: str) -> Path | None:
    """The tag's file in the cache, or None; never touches the network."""
    try:
        return hub_file(tag, download=False)
    except ConfigError:
        return None


def default_tag_note(spec: str | None, backbone: str) -> str | None:
    """A warning when `spec` is a bare backbone name whose timm default is not the published tag."""
    if not spec or "." in spec or Path(spec).expanduser().is_file() or spec.lower() in (NONE, PUBLISHED):
        return None
    arch = backbone_arch(backbone)
    published = PUBLISHED_WEIGHTS.get(arch)
    if spec != arch or published is None:
        return None
    tag = full_tag(spec)
    if tag == published.tag:
        return None
    return (f"--pretrained {spec} resolves to timm's default {tag}, but the published {arch} rows started "
            f"from {published.tag}; pass --pretrained published to start where they did")


def verify_cached(tag: str) -> dict:
    """Re-hash a cached tag's file against the hub's record (its blob is named by its sha256)
    and the registered sha256, where known."""
    path = cached_file(tag)
    if path is None:
        return {"tag": tag, "status": "not cached", "file": None, "sha256": None,
                "detail": f"{fetch_command(tag)} on a connected machine"}
    from ..fileio import sha256_file

    sha = sha256_file(path)   # never the per-process cache: this is the check
    blob = path.resolve().name
    pub = PUBLISHED_WEIGHTS.get(backbone_arch(tag))
    registered = pub.sha256 if pub is not None and pub.tag == full_tag(tag) else None
    known = [h for h in (blob if len(blob) == 64 else None, registered) if h]
    status = "unverified" if not known else "ok" if all(h == sha for h in known) else "mismatch"
    detail = "" if known else "no recorded sha256 to compare with"
    return {"tag": tag, "status": status, "file": str(path), "sha256": sha, "detail": detail}
