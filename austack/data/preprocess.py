"""The evaluation preprocessing of a trained encoder, as one object.

`EvalPreprocess` (resize the stored face, centre-crop, normalise with the weights' mean and
std) is resolved once per fold (`engine.context.eval_preprocess`): it builds the evaluation
view that scores validation and test, and the detector carries the same object, saves it
(`to_dict`) and applies it to new faces, so a prediction sees what the test fold saw.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .augment import BatchAugment


@dataclass(frozen=True)
class EvalPreprocess:
    crop: int                        # network input side
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None = None        # the side stored faces are resized to before the crop

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalPreprocess":
        """From a detector file's `preprocess` entry."""
        return cls(int(d["crop"]), tuple(d["mean"]), tuple(d["std"]), d.get("resize"))

    def to_dict(self) -> dict[str, Any]:
        return {"resize": self.resize, "crop": self.crop, "mean": list(self.mean), "std": list(self.std)}

    def module(self, seed: int | None = None) -> BatchAugment:
        """The deterministic view: uint8 faces [B, 3, S, S] -> normalised [B, 3, crop, crop]."""
        return BatchAugment(self.crop, views=1, train=False, mean=self.mean, std=self.std, resize=self.resize,
                            seed=seed)
