"""Name -> factory registries for backbones, heads, losses and dataset readers.

A registry files an entry under its name with a decorator, lists names with fnmatch patterns,
and answers an unknown name with the closest registered ones. A duplicate name is an error so
two modules can never silently shadow each other. Renamed entries go into `deprecations`.
"""
from __future__ import annotations

import fnmatch
import warnings
from typing import Callable, Generic, Iterator, TypeVar

from .errors import ConfigError, UnknownNameError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of entries of one kind (`kind` is used in messages)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self.deprecations: dict[str, str] = {}
        # family -> the entry a bare family name most likely means ("aunce" -> "aunce.paper")
        self.family_defaults: dict[str, str] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: file the decorated object under `name` (default: its `__name__`)."""

        def add(obj: T) -> T:
            key = name or getattr(obj, "__name__")
            if key in self._entries:
                raise ConfigError(f"duplicate {self.kind} name {key!r}: already registered by "
                                  f"{getattr(self._entries[key], '__module__', '?')}")
            self._entries[key] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        if name in self.deprecations:
            new = self.deprecations[name]
            warnings.warn(f"{self.kind} {name!r} is renamed {new!r}", DeprecationWarning, stacklevel=2)
            name = new
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self._entries)
        family = self.list(f"{name}.*")
        if name in self.family_defaults:
            hint = f"; did you mean {self.family_defaults[name]!r}?"
        elif family:
            hint = f"; did you mean one of {', '.join(map(repr, family))}?"
        return (f"unknown {self.kind} {name!r}{hint} "
                f"(registered: {', '.join(sorted(self._entries)) or 'none'})")

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching the fnmatch `pattern`, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"
