"""Losses for AU detection, by name: ``create_loss("wce")``, ``create_loss("aunce.paper")``.

Registered: ``wce`` (eq. 1), ``aunce.paper`` (the default AUNCE), ``aunce.reference`` (the public
code's semantics) and ``aunce.A`` .. ``aunce.E`` (Table VII's ablation models; E = paper).
Every loss is an `AULoss`: it declares its views, batch loss and training regime (see `base`).
"""
from ._registry import LOSSES, create_loss, list_losses, loss_options, register_loss
from .aunce import AUNCELoss, aunce_loss, draw_positive_types
from .base import AULoss
from .wce import WCELoss, wce_loss
from .weights import au_weights, occurrence_rates

__all__ = [
    "LOSSES", "create_loss", "list_losses", "loss_options", "register_loss",
    "AULoss", "AUNCELoss", "WCELoss", "aunce_loss", "wce_loss", "draw_positive_types",
    "au_weights", "occurrence_rates",
]
