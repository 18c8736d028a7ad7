"""Benchmark recipes: named `BenchConfig` settings in `baselines/recipes/<name>.yaml`.

A recipe file holds `BenchConfig` fields plus `title`, `source` and `notes`, which only document
it. `austack bench --recipe NAME`, `austack demo` and `austack list recipes` all read them here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .._resources import baselines_dir
from ..errors import ConfigError, UnknownNameError, did_you_mean

# Recipe keys that document a recipe and are not settings.
RECIPE_NOTES = ("title", "source", "notes")


def is_paper_recipe(name: str | None) -> bool:
    """A recipe that reproduces a table of the paper (`table*`): it pins `pretrained: published`."""
    return bool(name) and Path(name).stem.startswith("table")


def recipes_dir() -> Path:
    return baselines_dir() / "recipes"


def list_recipes() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def load_recipe(name_or_file: str) -> dict[str, Any]:
    """A recipe's settings by name (`baselines/recipes/<name>.yaml`) or from a YAML file."""
    path = Path(name_or_file).expanduser()
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = recipes_dir() / f"{name_or_file}.yaml"
        if not path.is_file():
            hint = did_you_mean(name_or_file, list_recipes())
            raise UnknownNameError(f"unknown recipe {name_or_file!r}{hint} (recipes: {', '.join(list_recipes())}; "
                                   f"or pass a YAML file)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read recipe {path}: {e}", path=path) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"recipe {path} is not a mapping of settings", path=path)
    settings = {k: v for k, v in raw.items() if k not in RECIPE_NOTES}
    settings.setdefault("recipe", path.stem)
    return settings
