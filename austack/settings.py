"""Settings declared once: a dataclass field carries its default, help text and range.

`BenchConfig` (bench) and `PrepareOptions` (prepare) are made of such fields; the CLI builds
its options from them, and `check_value` applies the same ranges to values from a recipe or
a library call, where click's checks do not run.
"""
from __future__ import annotations

from dataclasses import field
from typing import Any

from .errors import ConfigError


def setting(default: Any, help: str, *, cli: bool = True, min: float | None = None, min_open: bool = False,
            max: float | None = None, choices: tuple[str, ...] | None = None, metavar: str | None = None,
            hashed: bool = True, flag: str | None = None):
    """A settings field: its default plus what the CLI and the config hash need to know.

    min / min_open: the smallest value allowed (exclusive when min_open); choices: allowed
    strings; cli=False: settable from recipes or the library only; hashed=False: a setting that
    changes where or how fast a run goes, never the number it produces (left out of the config
    hash); flag: the option's name where it is not the field's (`--store` for `encoding`).
    """
    meta = dict(help=help, cli=cli, min=min, min_open=min_open, max=max, choices=choices, metavar=metavar,
                hashed=hashed, flag=flag)
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def check_value(f, value) -> None:
    """A ConfigError naming the field when `value` is outside its choices or range."""
    m = f.metadata
    if value is None:
        return
    if m["choices"] and value not in m["choices"]:
        raise ConfigError(f"unknown {f.name} {value!r}; expected one of {', '.join(m['choices'])}")
    if m["min"] is None or isinstance(value, bool):
        return
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{f.name} must be a number, got {value!r}")
    low, high = m["min"], m["max"]
    if value < low or (m["min_open"] and value == low) or (high is not None and value > high):
        bound = ("positive" if low == 0 else f"above {low}") if m["min_open"] else f"at least {low}"
        bound += f" and at most {high}" if high is not None else ""
        hint = " (leave grad_clip unset for no clipping)" if f.name == "grad_clip" else ""
        raise ConfigError(f"{f.name} must be {bound}, got {value}{hint}")
