"""The typed recipe of one benchmark run: `BenchConfig`, declared once.

`BenchConfig` is the contract between the recipe files in `baselines/recipes/`, the
`austack bench` command (whose options are generated from these fields: see `cli_fields`),
the engine and the results database. Each field carries its help text and range as metadata,
so a new setting is one line here. Unset fields (None) keep the defaults of the loss or backbone.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import ConfigError
from ..settings import check_value, setting

LR_SCHEDULES = ("constant", "cosine")
AUGMENT_POLICIES = ("basic", "simclr")   # the keys of austack.data.augment.POLICIES
THRESHOLDS = ("0.5", "val")
from ..labels import NOISE_KINDS  # noqa: E402  (flip any known label / turn active labels inactive)              # 0.5: the paper's; val: per-AU, chosen on validation
PAPER_CROP_FRACTION = 224 / 256          # the paper crops 224 px out of 256 px aligned faces


@dataclass(frozen=True)
class BenchConfig:
    backbone: str = setting("", "timm name or registered encoder, e.g. resnet18", cli=False)
    loss: str = setting("", "registered loss, e.g. wce, aunce.paper", cli=False)
    data: str = setting("", "Prepared store from `austack prepare`.", metavar="STORE.h5", hashed=False)
    protocol: str | None = setting(None, "Fold protocol. Default: the store's own.", metavar="NAME")
    folds: tuple[int, ...] = setting((), "Folds to run: K, a list 1,3, or all.", metavar="K|all", hashed=False)
    # Cross-dataset scoring (docs/cross-dataset.md): never changes how the source trains, so unhashed;
    # the target and its split are part of each cross-dataset row's own identity.
    test_data: tuple[str, ...] = setting((), "Cross-dataset: also score each fold's detector on this "
                                             "other store, over the AUs both label (repeatable).",
                                         metavar="TARGET.h5", hashed=False)
    test_fold: int | None = setting(None, "Cross-dataset: score only the target protocol's fold-K test "
                                          "subjects. Default: the whole target.", min=1, metavar="K",
                                    hashed=False)
    epochs: int = setting(20, "Training epochs (the encoder's, for AUNCE).", min=1)
    batch_size: int = setting(64, "Images per batch (AUNCE draws its pairs from it).", min=2)
    lr: float = setting(1e-4, "AdamW learning rate.", min=0, min_open=True)
    lr_schedule: str = setting("constant", "constant (the paper) or cosine annealing over the epochs.",
                               choices=LR_SCHEDULES)
    weight_decay: float = setting(1e-6, "AdamW weight decay.", min=0)
    grad_clip: float | None = setting(None, "Clip the gradients' global L2 norm to NORM each step. "
                                            "Default: no clipping.", min=0, min_open=True, metavar="NORM")
    image_size: int = setting(224, "Network input size in px: the stored face is resized to "
                                   "image-size / crop-fraction, then cropped.", min=16)
    crop_fraction: float = setting(PAPER_CROP_FRACTION, "Crop side over resized face side (224/256 as "
                                                        "in the paper; 1: the whole face).", min=0.5, max=1)
    threshold: str = setting("0.5", "Decision threshold: 0.5 (the paper's) or val (per AU, chosen on "
                                    "the validation subjects only).", choices=THRESHOLDS)
    label_noise: float = setting(0.0, "Study: flip this share of the known training and validation "
                                      "labels (the test split keeps the store's labels).", min=0, max=0.5)
    label_noise_kind: str = setting("symmetric", "symmetric (any label flips) or missed (active labels "
                                                 "become inactive, as a missed AU).", choices=NOISE_KINDS)
    device: str = setting("auto", "auto | cpu | cuda | cuda:N (auto: CUDA when available).", hashed=False)
    seed: int = setting(0, "Seed; CPU runs with one seed give identical metrics.", hashed=False)
    workers: int = setting(2, "DataLoader worker processes.", min=0, hashed=False)
    pretrained: str | None = setting(None, "Backbone weights: a .pth/.safetensors file, a timm tag "
                                           "ARCH.TAG (Hugging Face cache; HF_HUB_OFFLINE=1 reads it only), "
                                           "published (the tag the published rows used) or none. "
                                           "Default: random initialisation (said in the results).",
                                     metavar="FILE|TAG")
    embed_dim: int | None = setting(None, "Width d of the per-AU features. Default: C/4 for ResNet, "
                                          "C/2 for Swin (ME-GraphAU's).", min=1, metavar="D")
    loss_options: dict[str, Any] = setting({}, "Loss options, e.g. tau: 0.5 (CLI: --loss-opt).", cli=False)
    augment: str | None = setting(None, "Training views: basic (crop+flip) or simclr (+ colour, grey, "
                                        "blur). Default: the loss's own.", choices=AUGMENT_POLICIES)
    linear_epochs: int = setting(10, "Linear-probe epochs (losses evaluated by a linear probe).", min=1)
    linear_lr: float = setting(1e-2, "Linear-probe Adam step size.", min=0, min_open=True)
    linear_augment: bool = setting(False, "Fit the linear probe on fresh crop+flip views each epoch "
                                          "(slower) instead of the centre view embedded once.")
    compile: bool = setting(False, "torch.compile the training forward (see docs/benchmarks.md).",
                            hashed=False)
    # Recorded in the row's config, left out of its hash: a fold recorded with 2 threads is not
    # rerun with 1. On the CPU the last digits can depend on it (docs/benchmarks.md, "Threads").
    threads: int | None = setting(None, "torch CPU threads for this run; on shared cores 1 can be "
                                        "fastest. Default: torch's.", min=1, metavar="N", hashed=False)
    limit_train: int | None = setting(None, "Debug: train on N frames only; rows are marked not "
                                            "comparable.", min=1, metavar="N")
    out_dir: str = setting("runs", "Run dirs go here; rerunning a config resumes it.", hashed=False)
    db: str = setting("results.sqlite", "Results database.", hashed=False)
    recipe: str | None = setting(None, "recipe name this config came from", cli=False, hashed=False)

    def __post_init__(self):
        # Recipes skip click's checks: every bad value fails here, before any training.
        if isinstance(self.threshold, (int, float)) and not isinstance(self.threshold, bool):
            object.__setattr__(self, "threshold", str(float(self.threshold)))   # YAML reads 0.5 as a number
        for f in fields(self):
            check_value(f, getattr(self, f.name))
        object.__setattr__(self, "folds", tuple(int(k) for k in self.folds))
        data = (self.test_data,) if isinstance(self.test_data, str) else self.test_data   # YAML: one path or a list
        object.__setattr__(self, "test_data", tuple(str(p) for p in data))
        object.__setattr__(self, "loss_options", dict(self.loss_options))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown recipe key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{k: v for k, v in d.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["folds"] = list(self.folds)
        d["test_data"] = list(self.test_data)
        return d

    def hashed_settings(self) -> dict[str, Any]:
        """Every setting that can change the number a run produces (see `config_hash`)."""
        return {f.name: v for f, v in zip(fields(self), self.to_dict().values()) if f.metadata["hashed"]}


def cli_fields() -> list:
    """The BenchConfig fields `austack bench` offers as options, in declaration order."""
    return [f for f in fields(BenchConfig) if f.metadata["cli"]]


def parse_value(text: str) -> Any:
    """A setting's value as typed on a command line: an int, else a float (YAML would read
    1e-3 as a string), else YAML (true, cosine, [0.2, 0.2, 0.6])."""
    import yaml

    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"cannot read the value {text!r}") from None
