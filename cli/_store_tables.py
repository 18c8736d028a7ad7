"""Rich tables shared by `austack prepare`, `verify` and `info`."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from rich.table import Table

from austack.datasets.base import Anomaly


def anomaly_table(anomalies: Iterable[Anomaly], limit: int = 30, root: str | None = None) -> Table | None:
    """The anomalies, one row each. Paths under `root` (the raw directory, named in the caption)
    are shown relative to it, so that they stay readable on a narrow terminal."""
    items = list(anomalies)
    if not items:
        return None
    t = Table(title=f"Anomalies ({len(items)} entries, {sum(a.count for a in items)} items)", title_justify="left")
    t.add_column("kind", no_wrap=True)
    t.add_column("count", justify="right")
    t.add_column("path" if root is None else "path (in the raw directory)", overflow="fold")
    t.add_column("detail")
    for a in sorted(items, key=lambda a: (a.kind, a.path))[:limit]:
        t.add_row(a.kind, str(a.count), _relative(a.path, root), a.detail)
    captions = [f"raw directory: {root}"] if root is not None else []
    if len(items) > limit:
        captions.append(f"{len(items) - limit} more entries; all are in the store (`austack info --anomalies`)")
    if captions:
        t.caption, t.caption_justify = "\n".join(captions), "left"
    return t


def _relative(path: str, root: str | None) -> str:
    if root is None:
        return path
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def percent(x: float, digits: int = 1) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.{digits}f}"
