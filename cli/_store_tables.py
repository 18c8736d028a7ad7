"""Rich tables shared by `austack prepare`, `verify` and `info`."""
from __future__ import annotations

import math
from typing import Iterable

from rich.table import Table

from austack.datasets.base import Anomaly


def anomaly_table(anomalies: Iterable[Anomaly], limit: int = 30) -> Table | None:
    items = list(anomalies)
    if not items:
        return None
    t = Table(title=f"Anomalies ({len(items)} entries, {sum(a.count for a in items)} items)", title_justify="left")
    t.add_column("kind", no_wrap=True)
    t.add_column("count", justify="right")
    t.add_column("path")
    t.add_column("detail")
    for a in sorted(items, key=lambda a: (a.kind, a.path))[:limit]:
        t.add_row(a.kind, str(a.count), a.path, a.detail)
    if len(items) > limit:
        t.caption = f"{len(items) - limit} more entries; all are in the store (`austack info`)"
    return t


def percent(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}"
