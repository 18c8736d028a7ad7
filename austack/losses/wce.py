"""Weighted cross-entropy, eq. (1): the supervised baseline and the linear-evaluation loss."""
from __future__ import annotations

import torch

from ..errors import ConfigError
from ._registry import register_loss
from .base import AULoss


def wce_loss(probs: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None, *,
             eps: float = 1e-6) -> torch.Tensor:
    """-(w_i [y log p + (1 - y) log(1 - p)]) averaged over the entries with a known label.

    With every label known this is eq. (1) averaged over the batch. Probabilities are clamped to
    [eps, 1 - eps] so a saturated head gives a large, finite loss. Computed in (at least) fp32.
    No known label at all gives 0 (still attached to the graph).
    """
    if probs.shape != labels.shape or probs.dim() != 2:
        raise ConfigError(f"wce expects probs and labels of one shape [B, n_au], got "
                          f"{tuple(probs.shape)} and {tuple(labels.shape)}")
    with torch.autocast(probs.device.type, enabled=False):
        p = probs.to(torch.promote_types(probs.dtype, torch.float32)).clamp(eps, 1 - eps)
        y = labels.to(device=p.device, dtype=p.dtype)
        known = y >= 0
        bce = -(y * p.log() + (1 - y) * torch.log1p(-p))
        if weights is not None:
            bce = bce * weights.to(device=p.device, dtype=p.dtype)
        bce = torch.where(known, bce, torch.zeros_like(bce))
        return bce.sum() / known.sum().clamp(min=1)


@register_loss("wce")
class WCELoss(AULoss):
    """Eq. (1). `weights` [n_au] default to ones; `set_rates` / `set_weights` set them."""

    views = 1
    regime = "supervised"

    def __init__(self, weights=None, eps: float = 1e-6):
        super().__init__(weights)
        if not 0 < eps < 0.5:
            raise ConfigError(f"wce eps must lie in (0, 0.5), got {eps}")
        self.eps = eps

    def forward(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return wce_loss(probs, labels, self._weights_for(probs.shape[-1], probs), eps=self.eps)

    def batch_loss(self, outs, labels: torch.Tensor) -> torch.Tensor:
        return self(outs[0].probs.float(), labels)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, weighted={self.weights is not None}"
