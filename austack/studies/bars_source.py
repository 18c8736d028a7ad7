"""What the per-AU bars are drawn from: run dirs or database rows (with subject-bootstrap
CIs), and published rows of the same dataset (never beside synthetic results, as in the
leaderboard: numbers from synthetic data do not compare with a paper's)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import ResultsError, UnknownNameError, did_you_mean
from ..runs.rundir import DETECTOR_NAME, read_config
from .au_plots import Bars, bars_from_bootstrap, bars_from_published


def _run_dir_series(path: Path, n_boot: int) -> tuple[Bars, str, bool]:
    from ..models.detector import load_detector
    from ..results.rescore import rescore

    r = rescore(path, n_boot=n_boot)
    fold_dir = r.folds[0].path.parent
    info = load_detector(fold_dir / DETECTOR_NAME).info
    label = _method_label(fold_dir, info) + (f", {path.name}" if path.name.startswith("fold") else "")
    return bars_from_bootstrap(label, r.interval), info.get("dataset", "?"), bool(info.get("synthetic"))


def _method_label(fold_dir: Path, info: dict) -> str:
    """`backbone + loss` as the leaderboard names a method (the run dir's name holds a hash)."""
    import yaml

    try:
        cfg = read_config(fold_dir) or {}
    except (OSError, yaml.YAMLError):
        cfg = {}
    return f"{cfg.get('backbone', '?')} + {cfg.get('loss', info.get('loss', '?'))}"


def _db_series(db, key: str, n_boot: int) -> tuple[Bars, str, bool]:
    from ..results.rescore import interval_for_rows, resolve

    rows = resolve(db, key)
    r = rows[0]
    label = f"{r.backbone} + {r.loss} ({len(rows)} folds)"
    return bars_from_bootstrap(label, interval_for_rows(rows, n_boot=n_boot)), r.dataset, any(x.synthetic for x in rows)


def bar_series(sources: Sequence[str], db_path: str | Path, *, n_boot: int = 2000) -> tuple[list[Bars], str, bool]:
    """(bars of each source, their one dataset, whether any is synthetic)."""
    from ..results.db import ResultsDB

    series, datasets, synthetic, db = [], set(), False, None
    try:
        for src in sources:
            if Path(src).expanduser().is_dir():
                bars, dataset, synth = _run_dir_series(Path(src).expanduser().resolve(), n_boot)
            else:
                db = db or ResultsDB(db_path, create=False)
                bars, dataset, synth = _db_series(db, src, n_boot)
            series.append(bars)
            datasets.add(dataset)
            synthetic |= synth
    finally:
        if db is not None:
            db.close()
    labels = [b.label for b in series]
    for b, key in zip(series, sources):         # two sources of one method: say which is which
        if labels.count(b.label) > 1:
            b.label += f" [{Path(key).name[:24]}]"
    if len(datasets) > 1:
        raise ResultsError(f"the sources come from several datasets ({', '.join(sorted(datasets))}); plot one "
                           f"dataset at a time")
    return series, datasets.pop(), synthetic


def published_series(dataset: str, methods: Sequence[str], aus: Sequence[int]) -> list[Bars]:
    """The published rows of `dataset` named `methods` (the comparison table's first)."""
    from ..published import load_published

    rows = load_published(dataset)
    out = []
    for m in methods:
        match = [r for r in rows if r.method.lower() == m.lower() and any(v is not None for v in r.f1)]
        if not match:
            names = sorted({r.method for r in rows})
            raise UnknownNameError(f"no published {dataset} row for {m!r}{did_you_mean(m, names)} "
                                   f"(published: {', '.join(names)})")
        best = sorted(match, key=lambda r: r.kind != "comparison")[0]
        if list(best.aus) != list(aus):
            raise ResultsError(f"published {m} on {dataset} scores AUs {list(best.aus)}, the measured rows "
                               f"{list(aus)}; they cannot share one chart")
        out.append(bars_from_published(best))
    return out
