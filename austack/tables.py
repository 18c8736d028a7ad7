"""Tables that fit the terminal: columns dealt over as few tables as the width allows.

Rich squeezes a table wider than the console by wrapping or cutting cells ("AU…", "18…");
numbers must never be cut. `fit_columns` builds a table with as many of the optional columns
as fit the console's width, then the next table with the rest, and so on.
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def widest(console, table) -> int:
    """The width `table` takes when nothing is wrapped or cut."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update(width=10_000, max_width=10_000), table).maximum


def fit_columns(console, columns: Sequence[T], build: Callable[[Sequence[T]], object]) -> list[list[T]]:
    """`columns` split into consecutive chunks; `build(chunk)` (the table with the fixed columns
    plus those of `chunk`) fits `console.width` for each chunk, or holds a single column.
    Chunks are as even as the width allows (12 AUs over two tables: 6 and 6, not 11 and 1)."""
    greedy: list[list[T]] = [[]]
    for col in columns:
        trial = greedy[-1] + [col]
        if greedy[-1] and widest(console, build(trial)) > console.width:
            greedy.append([col])
        else:
            greedy[-1] = trial
    n = len(greedy)
    size = -(-len(columns) // n)
    even = [list(columns[i:i + size]) for i in range(0, len(columns), size)]
    if len(even) == n and all(fits(console, build(chunk)) for chunk in even):
        return even
    return greedy


def fits(console, table) -> bool:
    return widest(console, table) <= console.width
