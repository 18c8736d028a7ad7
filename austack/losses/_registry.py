"""The loss registry: `register_loss`, `list_losses`, `create_loss`.

An entry is a factory (a class or a function) taking keyword options and returning an
`AULoss` (see `austack.losses.base` for what a loss declares).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from ..errors import ConfigError
from ..registry import Registry

LOSSES: Registry[Callable[..., nn.Module]] = Registry("loss")
LOSSES.family_defaults["aunce"] = "aunce.paper"     # the paper's settings; A-E are its ablations


def register_loss(name: str | None = None):
    """Decorator: file a loss factory under `name` (default: its `__name__`)."""
    return LOSSES.register(name)


def list_losses(pattern: str = "*") -> list[str]:
    """Registered loss names matching the fnmatch `pattern`, e.g. ``list_losses("aunce.*")``."""
    return LOSSES.list(pattern)


def loss_options(name: str) -> list[str]:
    """The option names the loss `name` accepts."""
    return list(inspect.signature(LOSSES.get(name)).parameters)


def create_loss(name: str, **options: Any) -> nn.Module:
    """Build the registered loss `name`. Options whose value is None are dropped, so an unset
    CLI flag or recipe key keeps the loss's own default (as timm's `create_model` does)."""
    factory = LOSSES.get(name)
    options = {k: v for k, v in options.items() if v is not None}
    signature = inspect.signature(factory)
    unknown = sorted(set(options) - set(signature.parameters))
    if unknown:
        raise ConfigError(f"loss {name!r} has no option(s) {', '.join(map(repr, unknown))}; "
                          f"it takes: {', '.join(signature.parameters) or 'no options'}")
    try:
        return factory(**options)
    except (TypeError, ValueError) as e:   # a value of the wrong kind, e.g. tau=abc
        if isinstance(e, ConfigError):
            raise
        given = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise ConfigError(f"loss {name!r} cannot use the options {given}: {e}") from None
