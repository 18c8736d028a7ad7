"""What every austack loss shares: how it is driven, and its per-AU weights.

A loss declares everything the trainer needs to drive it, so a new loss needs no change to
the engine:
``views``: augmented views per image (1 or 2);
``batch_loss(outs, labels)``: the loss of one batch from the encoder's outputs, one
`EncoderOutput` per view (``.embeddings [B, n_au, d]``, ``.probs [B, n_au]``);
``global_batch``: the loss compares samples across the batch, so under DDP the trainer hands
it every rank's batch (AUNCE draws positives and negatives from it);
``regime``: how a detector is made and selected (`austack.engine.regimes`): "supervised"
(the encoder's own probabilities, epoch chosen on validation) or "linear_probe" (a per-AU
linear classifier fitted on the frozen encoder);
``augment``: the default training-view policy.
Labels are 1 (active), 0 (inactive) or -1 (unknown).

Before training it calls ``loss.set_rates(training_rates)`` (see `occurrence_rates`): each loss
takes from the rates what it uses (WCE and AUNCE turn them into the w_i of eq. 1).
"""
from __future__ import annotations

from typing import ClassVar, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .weights import au_weights


class AULoss(nn.Module):
    views: ClassVar[int] = 1
    global_batch: ClassVar[bool] = False
    regime: ClassVar[str] = "supervised"
    augment: ClassVar[str] = "basic"
    uses_weights: bool = True   # whether set_rates turns rates into per-AU weights w_i

    def __init__(self, weights=None):
        super().__init__()
        self.register_buffer("weights", None)
        self.register_buffer("rates", None)
        self.generator: torch.Generator | None = None
        if weights is not None:
            self.set_weights(weights)

    def batch_loss(self, outs: Sequence, labels: torch.Tensor) -> torch.Tensor:
        """The loss of one batch: `outs` holds one EncoderOutput per view, in view order."""
        raise NotImplementedError

    def reseed(self, seed: int) -> None:
        """Give the loss its own CPU generator (every rank then draws the same numbers)."""
        self.generator = torch.Generator().manual_seed(int(seed))

    def set_weights(self, weights) -> None:
        """Use these per-AU weights w_i (one per AU, positive)."""
        w = torch.as_tensor(weights, dtype=torch.float32).detach().reshape(-1)
        if not torch.isfinite(w).all() or (w < 0).any():
            raise ConfigError(f"per-AU weights must be finite and non-negative, got {w.tolist()}")
        self.weights = w

    def set_rates(self, rates, *, aus: Sequence[int] | None = None, min_rate: float | None = None) -> None:
        """Tell the loss the training occurrence rates; a loss that uses w_i derives them here."""
        self.rates = torch.as_tensor(rates, dtype=torch.float32).detach().reshape(-1)
        if self.uses_weights:
            self.weights = au_weights(rates, aus=aus, min_rate=min_rate)

    def _weights_for(self, n_au: int, like: torch.Tensor) -> torch.Tensor | None:
        if self.weights is None:
            return None
        if self.weights.numel() != n_au:
            raise ConfigError(f"{type(self).__name__} holds {self.weights.numel()} per-AU weights "
                              f"but the batch has {n_au} AUs")
        return self._buffer_on("weights", like)

    def _buffer_on(self, name: str, like: torch.Tensor) -> torch.Tensor | None:
        """Buffer `name` on `like`'s device. The rates arrive on the host after the module was
        moved, so the first call moves the buffer and keeps it there: later steps copy nothing
        (a host-to-device copy per step would make the training loop wait for the GPU)."""
        value = getattr(self, name)
        if value is not None and value.device != like.device:
            value = value.to(like.device)
            setattr(self, name, value)
        return value
