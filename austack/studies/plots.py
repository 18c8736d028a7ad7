"""Curves of mean F1 against a study's variable, with 95% confidence bands (matplotlib, Agg).

Inputs are plain summary records (dicts with the estimate and interval in percent), so the
figures can be redrawn from a study's summary.csv without the runs. `save_figure` writes the
PNG and an SVG beside it, each atomically.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")   # files only: no display, the same pixels on every machine
import matplotlib.pyplot as plt  # noqa: E402

from ..fileio import atomic_write_bytes  # noqa: E402

DPI = 150


def save_figure(fig, path: str | Path, *, svg: bool = True) -> list[Path]:
    """Write `fig` to `path` (PNG) and, with svg, to the same name with .svg; close it."""
    path = Path(path).expanduser()
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for p, fmt in ((path, "png"), (path.with_suffix(".svg"), "svg"))[: 2 if svg else 1]:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=DPI, bbox_inches="tight",
                    metadata={"Software": None} if fmt == "png" else {"Date": None})
        written.append(atomic_write_bytes(p, buf.getvalue()))
    plt.close(fig)
    return written


def _numeric(values: Sequence) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def curve_panel(ax, records: Sequence[dict], x: str, series: str, *, key: str = "f1") -> None:
    """One line per `series` value: `key` against `x`, with the band from key_low to key_high."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(str(r[series]), []).append(r)
    xs_all = list(dict.fromkeys(r[x] for r in records))
    numeric = _numeric(xs_all)
    for name, rs in groups.items():
        rs = sorted(rs, key=lambda r: r[x] if numeric else xs_all.index(r[x]))
        xs = [r[x] if numeric else xs_all.index(r[x]) for r in rs]
        y = [r[key] for r in rs]
        line, = ax.plot(xs, y, marker="o", label=name)
        ax.fill_between(xs, [r[f"{key}_low"] for r in rs], [r[f"{key}_high"] for r in rs],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    if not numeric:
        ax.set_xticks(range(len(xs_all)), [str(v) for v in xs_all])
    ax.grid(True, alpha=0.3)


# What a level means for each kind (austack.labels.flip_labels): its share of which labels
NOISE_AXIS = {"symmetric": "share of known training labels flipped",
              "missed": "share of active training labels set to 0"}


def noise_figure(summary: Sequence[dict], path: str | Path, *, title: str,
                 always_active: float | None = None) -> list[Path]:
    """Mean test F1 (clean labels) against the noise level: one panel per kind of noise, one
    line per loss, 95% subject-bootstrap bands. Level 0 is drawn in every panel.
    `always_active`: the F1 (%) of calling every AU active on the same clean test folds, drawn
    as a dashed line: the floor the detectors are read against."""
    kinds = list(dict.fromkeys(r["kind"] for r in summary if r["level"] > 0)) or \
        list(dict.fromkeys(r["kind"] for r in summary))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.6), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        records = [r for r in summary if r["kind"] == kind or r["level"] == 0]
        curve_panel(ax, records, "level", "loss")
        if always_active is not None:
            ax.axhline(always_active, color="grey", linestyle="--", linewidth=1, label="always active")
        ax.set_title(f"{kind} flips" if kind == "symmetric" else f"{kind} AUs (1 -> 0)")
        ax.set_xlabel(NOISE_AXIS.get(kind, "share of training labels flipped"))
    axes[0][0].set_ylabel("mean F1 on clean test labels (%)")
    axes[0][-1].legend(title="loss", fontsize=8)
    fig.suptitle(title, fontsize=10, y=1.04)
    return save_figure(fig, path)


def sweep_figure(summary: Sequence[dict], param: str, series: str | None, path: str | Path, *,
                 title: str) -> list[Path]:
    """Mean test F1 against one swept parameter (the paper's Fig. 5), one line per value of
    the other parameters, 95% subject-bootstrap bands."""
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    records = [{**r, "_series": r[series] if series else "F1"} for r in summary]
    curve_panel(ax, records, param, "_series")
    ax.set_xlabel(param)
    ax.set_ylabel("mean test F1 (%)")
    if series:
        ax.legend(title=series, fontsize=8)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
