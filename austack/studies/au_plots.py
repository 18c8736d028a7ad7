"""Per-AU figures: F1 bars with 95% CIs beside published rows, and precision-recall curves.

Bars: each measured source is a run dir (`rescore`) or rows of the results database (a config
hash or row id, `interval_for_rows`); published rows (`austack.published`) have no interval
and are drawn hatched. PR curves come from the stored `predictions.npz` of each fold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ResultsError
from .plots import plt, save_figure


@dataclass
class Bars:
    label: str
    aus: list[int]
    f1: list[float | None]          # percent
    low: list[float | None] | None = None
    high: list[float | None] | None = None
    published: bool = False
    mean: tuple[float, float, float] | None = None   # the AU mean's (estimate, low, high), percent


def bars_from_bootstrap(label: str, b) -> Bars:
    m = b.mean_f1
    return Bars(label, list(b.aus), [100 * i.estimate for i in b.per_au], [100 * i.low for i in b.per_au],
                [100 * i.high for i in b.per_au], mean=(100 * m.estimate, 100 * m.low, 100 * m.high))


def bar_values(s: Bars, aus: Sequence[int]) -> tuple[list[float | None], np.ndarray | None]:
    """F1 per AU of `aus` then the AU mean, and the whiskers' (below, above) lengths, or None for a
    series without intervals. The mean's whisker is the bootstrap interval of the mean F1 itself
    (not zero: a bar the title calls a CI always has one where the interval is known)."""
    f1 = [_at(s, a, s.f1) for a in aus]
    f1.append(s.mean[0] if s.mean is not None else _mean(f1))
    if s.low is None:
        return f1, None
    lo = [_at(s, a, s.low) for a in aus] + [s.mean[1] if s.mean is not None else None]
    hi = [_at(s, a, s.high) for a in aus] + [s.mean[2] if s.mean is not None else None]
    err = np.array([[v - l if v is not None and l is not None else 0 for v, l in zip(f1, lo)],
                    [h - v if v is not None and h is not None else 0 for v, h in zip(f1, hi)]])
    return f1, np.clip(err, 0, None)


def bars_from_published(row) -> Bars:
    return Bars(f"{row.label} ({row.venue}, published)", list(row.aus), list(row.f1), published=True)


def au_bars_figure(series: Sequence[Bars], path: str | Path, *, title: str) -> list[Path]:
    """Grouped bars: one group per AU of the first series, one bar per series; whiskers = 95% CI."""
    if not series:
        raise ResultsError("nothing to plot: give at least one run dir, config hash or row id")
    aus = series[0].aus
    width = 0.8 / len(series)
    # at most 10 inches (1500 px) wide: 8 for 12 AUs and two series; the legend goes under the
    # axes, not beside them, so long labels cannot widen the figure
    fig, ax = plt.subplots(figsize=(min(10.0, max(6.0, (len(aus) + 1) * (0.2 + 0.22 * len(series)))),
                                    4.2 + 0.2 * len(series)))
    x = np.arange(len(aus) + 1)     # the last group is the mean over AUs
    for j, s in enumerate(series):
        f1, err = bar_values(s, aus)
        kw = {"hatch": "//", "alpha": 0.6} if s.published else {}
        bars = ax.bar(x + (j - (len(series) - 1) / 2) * width, [v or 0 for v in f1], width, label=s.label, **kw)
        if err is not None:
            ax.errorbar([b.get_x() + b.get_width() / 2 for b in bars], [v or 0 for v in f1], yerr=err,
                        fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    ax.set_xticks(x, [f"AU{a}" for a in aus] + ["mean"])
    ax.set_ylabel("F1 (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(2, len(series)), frameon=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _at(s: Bars, au: int, values) -> float | None:
    if au not in s.aus:
        return None
    v = values[s.aus.index(au)]
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _mean(values) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def pr_figure(fold_predictions: dict[int, dict], path: str | Path, *, title: str) -> list[Path]:
    """One panel per AU: each fold's test precision-recall curve (known labels only), its
    average precision, and the operating point its threshold gave."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    first = next(iter(fold_predictions.values()))
    aus = [int(a) for a in first["aus"]]
    cols = min(4, len(aus))
    rows = math.ceil(len(aus) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.9 * cols, 2.8 * rows), squeeze=False)
    for a, au in enumerate(aus):
        ax = axes[a // cols][a % cols]
        for k, p in sorted(fold_predictions.items()):
            y, s = p["test_labels"][:, a], p["test_probs"][:, a]
            known = y >= 0
            if known.sum() == 0 or y[known].max() < 1:
                continue    # no positive test label: no curve to draw
            prec, rec, _ = precision_recall_curve(y[known], s[known])
            ap = average_precision_score(y[known], s[known])
            line, = ax.plot(rec, prec, label=f"fold {k} AP {100 * ap:.0f}", linewidth=1)
            # a detector that calls every frame active sits at this precision: the chance floor
            ax.axhline(y[known].mean(), color=line.get_color(), linestyle=":", linewidth=0.8)
            pred = s[known] >= p["thresholds"][a]
            tp = (pred & (y[known] == 1)).sum()
            ax.plot(tp / max(1, (y[known] == 1).sum()), tp / max(1, pred.sum()), "o", color=line.get_color(),
                    markersize=4)
        ax.set_title(f"AU{au}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        if ax.lines:      # outside the unit square, so no curve is hidden under it
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
    for a in range(len(aus), rows * cols):
        axes[a // cols][a % cols].axis("off")
    fig.suptitle(title + " (dots: the applied threshold; dotted: prevalence, the precision of "
                 "calling every frame active)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def fold_predictions(run_dir: str | Path) -> tuple[dict[int, dict], str]:
    """({fold: predictions.npz arrays}, the run's name) of a run dir or one fold's dir."""
    from ..runs.rundir import PREDICTIONS_NAME, fold_dirs, fold_number, load_predictions

    path = Path(run_dir).expanduser().resolve()
    dirs = fold_dirs(path, PREDICTIONS_NAME)
    if not dirs:
        raise ResultsError(f"no {PREDICTIONS_NAME} in {path} or its fold*/ folders; give a run dir of "
                           f"`austack bench`", path=path)
    name = f"{path.parent.name}/{path.name}" if fold_number(path) is not None else path.name
    return {k: load_predictions(d / PREDICTIONS_NAME) for k, d in dirs}, name
