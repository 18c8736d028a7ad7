"""Leaderboards: measured experiments aggregated over folds and seeds, beside the published numbers.

The pieces, one job each:
- `austack.results.board`: identity and aggregation (`BoardRow`, `Leaderboard`,
  `build_leaderboards`, `leaderboards_from_db`), CIs, ranking;
- `austack.results.board_formats`: the wide file formats (csv, md, latex, json);
- `austack.results.board_rich`: terminal tables that fit the terminal's width.
This module gathers them under one name and picks a renderer by format name.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import ConfigError
from .board import (DEFAULT_PUBLISHED_KINDS, KINDS, MEASURED, PUBLISHED, BoardRow, Leaderboard, RowCI, aggregate,
                    build_leaderboards, dataset_key, experiment_key, leaderboards_from_db, published_rows)
from .board_formats import LEGEND, MISSING, to_csv, to_json, to_latex, to_markdown
from .board_rich import au_tables, print_rich, renderables, summary_table, to_text

FORMATS = ("table", "csv", "md", "latex", "json")
RENDERERS = {"table": to_text, "csv": to_csv, "md": to_markdown, "latex": to_latex, "json": to_json}


def render(boards: Sequence[Leaderboard], fmt: str, **options) -> str:
    """Text of `boards` in one of FORMATS (`options`, e.g. per_au, go to the table renderer)."""
    if fmt not in RENDERERS:
        raise ConfigError(f"unknown leaderboard format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return to_text(boards, **options) if fmt == "table" else RENDERERS[fmt](boards)


__all__ = ["DEFAULT_PUBLISHED_KINDS", "FORMATS", "KINDS", "LEGEND", "MEASURED", "MISSING", "PUBLISHED", "BoardRow",
           "Leaderboard", "RowCI", "aggregate", "au_tables", "build_leaderboards", "dataset_key", "experiment_key",
           "leaderboards_from_db", "print_rich", "published_rows", "render", "renderables", "summary_table",
           "to_csv", "to_json", "to_latex", "to_markdown", "to_text"]
