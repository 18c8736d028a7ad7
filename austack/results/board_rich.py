"""Leaderboards on a terminal: tables that fit its width (80 columns and up).

By default each board prints a short table per kind (measured, published): rank, method,
setup, Avg F1 (± std over folds), its 95% CI when computed, and folds and seeds. Caveats and
citations follow as numbered lines rather than as a wide column. `per_au=True` adds the
per-AU F1 as further tables, with as many AU columns in each as the width holds, so no
number is ever cut or wrapped. The wide one-column-per-AU layout is in `board_formats`.
"""
from __future__ import annotations

import io
from typing import Sequence

from ..tables import fit_columns
from .board import KINDS, MEASURED, BoardRow, Leaderboard
from ..published_provenance import MARK_LEGEND
from .board_formats import ci_cell, citations, fmt, folds_cell, has_ci, plus_minus, seeds_cell, title
from .setup_code import CODE_LEGEND

STYLE = {MEASURED: "bold green", "published": "bold cyan"}
METHOD_WIDTH = 26        # a longer method name wraps at word boundaries
LEGEND = ("F1 in percent. Avg F1: mean over AUs; ± std over folds on measured rows, as printed on published "
          "rows (see --format json, plus_minus); 95% CI: bootstrap over test subjects (--ci). Measured and "
          "published rows are ranked separately.")


def _table():
    """Light rules, one space between columns: the narrowest table that still reads well. Titles
    are printed as lines of their own, so that they wrap at the terminal's width, not the table's."""
    from rich import box
    from rich.table import Table

    return Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False)


def _method(r: BoardRow, cites: dict[str, int]) -> str:
    return f"{r.method} [{cites[r.citation]}]" if r.citation else r.method


def summary_table(board: Leaderboard, kind: str):
    """Rank, method, setup, Avg F1 and (measured) CI, folds and seeds: one line a row at 80."""
    from rich.text import Text

    rows, cites = board.of_kind(kind), citations(board)
    measured = kind == MEASURED
    t = _table()
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("Method", max_width=METHOD_WIDTH, overflow="fold")
    t.add_column("Setup", overflow="fold", ratio=1)
    t.add_column("How", no_wrap=not measured, overflow="fold")
    t.add_column("Avg F1", justify="right", no_wrap=True)
    show_ci = measured and has_ci(board)
    if show_ci:
        t.add_column("95% CI", justify="right", no_wrap=True)
    if measured:
        t.add_column("Folds", justify="right", no_wrap=True)
        t.add_column("Seeds", justify="right", no_wrap=True)
    for r in rows:
        avg = Text(plus_minus(r.avg, r.avg_sd), style=STYLE[kind] if "Avg" in r.best else "")
        cells = [str(r.rank), _method(r, cites), r.setup, r.how, avg]
        cells += ([ci_cell(r)] if show_ci else []) + ([folds_cell(r), seeds_cell(r)] if measured else [])
        t.add_row(*cells)
    return t


def _au_table(board: Leaderboard, kind: str, columns: Sequence[str]):
    from rich.text import Text

    cites = citations(board)
    t = _table()
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("Method", max_width=METHOD_WIDTH, overflow="fold")
    for col in columns:
        t.add_column(col, justify="right", no_wrap=True)
    for r in board.of_kind(kind):
        cells = [Text(str(r.rank)), Text(_method(r, cites))]
        for col in columns:
            sd = r.avg_sd if col == "Avg" else r.accuracy_sd if col == "Acc" else r.f1_sd.get(int(col[2:]))
            text = Text(fmt(r.value(col)), style=STYLE[kind] if col in r.best else "")
            if sd is not None:
                text.append(f"\n±{sd:.1f}", style="dim")
            cells.append(text)
        t.add_row(*cells)
    return t


def au_tables(board: Leaderboard, kind: str, console) -> list:
    """Per-AU tables of one kind, each after its title line, the AU columns dealt over as few
    tables as the console's width allows."""
    from rich.text import Text

    chunks = fit_columns(console, board.columns, lambda cols: _au_table(board, kind, cols))
    out = []
    for i, cols in enumerate(chunks):
        part = f" ({i + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        out += [Text(f"{board.heading}: {kind}, F1 per AU{part}", style="bold"), _au_table(board, kind, cols)]
    return out


def _row_notes(board: Leaderboard) -> list[str]:
    return [f"{r.kind} #{r.rank} {r.method}: {'; '.join(r.flags)}" for r in board.rows if r.flags]


def renderables(boards: Sequence[Leaderboard], console, per_au: bool = False) -> list:
    from rich.text import Text

    parts: list = []
    for board in boards:
        for kind in KINDS:
            if not board.of_kind(kind):
                continue
            parts += [Text(f"{title(board)}: {kind}", style="bold"), summary_table(board, kind)]
            if per_au:
                parts += au_tables(board, kind, console)
        parts += [Text(line, style="yellow") for line in _row_notes(board) + board.notes]
        parts += [Text(f"[{n}] {text}", style="dim") for text, n in citations(board).items()]
    if any(b.rows for b in boards):
        parts.append(Text(LEGEND, style="dim"))
        parts.append(Text(MARK_LEGEND, style="dim"))
        if any(b.of_kind(MEASURED) for b in boards):
            parts.append(Text(CODE_LEGEND, style="dim"))
    return parts


def print_rich(boards: Sequence[Leaderboard], console=None, *, per_au: bool = False) -> None:
    """Print on a terminal, within its width."""
    from rich.console import Console

    console = console or Console()
    for part in renderables(boards, console, per_au):
        console.print(part)


def to_text(boards: Sequence[Leaderboard], color: bool = False, width: int = 80, per_au: bool = False) -> str:
    """The terminal tables as plain (or ANSI-coloured) text `width` columns wide, e.g. for -o FILE."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, record=True, color_system="standard" if color else None)
    print_rich(boards, console, per_au=per_au)
    return console.export_text(styles=color)
