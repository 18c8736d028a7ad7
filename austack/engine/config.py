"""The typed recipe of one benchmark run, and what a run returns.

`BenchConfig` is the contract between the recipe files in `baselines/recipes/`, the
`austack bench` command, the trainer (`austack.engine`) and the results database
(`austack.results`). Unset fields (None) keep the defaults of the loss or backbone.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import ConfigError


LR_SCHEDULES = ("constant", "cosine")
AUGMENT_POLICIES = ("basic", "simclr")   # the keys of austack.data.augment.POLICIES


@dataclass
class BenchConfig:
    backbone: str                      # timm name or registered test encoder, e.g. "resnet18"
    loss: str                          # registered loss, e.g. "wce", "aunce.paper", "aunce.reference"
    data: str                          # prepared store (.h5)
    protocol: str | None = None        # default: the store's own protocol
    folds: tuple[int, ...] = ()        # () = every fold of the protocol
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-4
    lr_schedule: str = "constant"      # "constant" (the paper) or "cosine" (annealed to 0 over the epochs)
    weight_decay: float = 1e-6
    grad_clip: float | None = None     # clip the gradients' global L2 norm to this; None: no clipping
    image_size: int = 224              # crop size fed to the encoder (store images are larger)
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    seed: int = 0
    workers: int = 2
    pretrained: str | None = None      # local weight file; None = random init (said loudly)
    loss_options: dict[str, Any] = field(default_factory=dict)   # e.g. {"tau": 0.5, "p": [..]}
    augment: str | None = None         # "basic" (crop+flip) or "simclr"; None: simclr for 2-view losses, else basic
    linear_epochs: int = 10            # AUNCE: linear evaluation epochs on the frozen encoder
    linear_lr: float = 1e-2            # AUNCE: Adam step size of the per-AU linear heads
    linear_augment: bool = False       # AUNCE: fit the heads on fresh 'basic' views each epoch
                                       # (False: on the centre view, embedded once)
    compile: bool = False              # torch.compile the training forward (measured in docs/benchmarks.md)
    limit_train: int | None = None     # debug subsampling: rows so marked are not comparable
    out_dir: str = "runs"
    db: str = "results.sqlite"
    recipe: str | None = None          # recipe name this config came from, if any

    def __post_init__(self):
        # recipes skip the CLI's range checks: a bad value must fail here, before any training
        for name in ("lr", "linear_lr", "grad_clip"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be positive, got {value}"
                                  + (" (leave grad_clip unset for no clipping)" if name == "grad_clip" else ""))
        for name, allowed in (("lr_schedule", LR_SCHEDULES), ("augment", AUGMENT_POLICIES)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ConfigError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown recipe key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        d = {k: v for k, v in d.items() if v is not None}
        if "folds" in d:
            d["folds"] = tuple(int(f) for f in d["folds"])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["folds"] = list(self.folds)
        return d
