"""Per-AU F1 and accuracy (section IV-A3), their mean over AUs, and the mean and spread over folds.

Everything here is the one scoring path of austack: the trainer, the CLI and the leaderboards call
`evaluate` and `fold_summary`, never their own F1. Counts are a vectorised numpy confusion count.
"""
from __future__ import annotations

import io
import math
import sys
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from .errors import ConfigError


def _as_numpy(x, name: str) -> np.ndarray:
    torch = sys.modules.get("torch")   # a tensor exists only where torch is imported: the
    if torch is not None and isinstance(x, torch.Tensor):   # leaderboard need not import it
        x = x.detach().float().cpu()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ConfigError(f"{name} must be [frames, n_au], got shape {tuple(a.shape)}")
    return a


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """2TP / (2TP + FP + FN); 0 where the denominator is 0 (sklearn's zero_division=0)."""
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


@dataclass
class AUScores:
    """Scores of one evaluation: arrays are per AU, in `aus` order; F1 and accuracy in [0, 1].

    An AU with no known label in the evaluated frames has NaN F1 and accuracy; it is listed in
    `unscored` and left out of the means (the table says so).
    """

    aus: list[int]
    f1: np.ndarray
    accuracy: np.ndarray
    n_known: np.ndarray          # frames with a known label, per AU
    n_positive: np.ndarray       # of which active
    threshold: float | list[float]   # one for every AU, or one per AU

    @property
    def unscored(self) -> list[int]:
        return [au for au, n in zip(self.aus, self.n_known) if n == 0]

    @property
    def f1_mean(self) -> float:
        return _mean_over_scored(self.f1)

    @property
    def accuracy_mean(self) -> float:
        return _mean_over_scored(self.accuracy)

    def to_dict(self) -> dict:
        return {"aus": list(self.aus), "f1": self.f1.tolist(), "accuracy": self.accuracy.tolist(),
                "f1_mean": self.f1_mean, "accuracy_mean": self.accuracy_mean,
                "n_known": self.n_known.tolist(), "n_positive": self.n_positive.tolist(),
                "threshold": self.threshold}

    def table(self, title: str | None = None) -> str:
        """A plain-text table: one row per AU (F1, accuracy in %, frames, active rate), then Avg."""
        t = Table(title=title)
        for name in ("AU", "F1 %", "Acc %", "frames", "active %"):
            t.add_column(name, justify="right", no_wrap=True)
        for i, au in enumerate(self.aus):
            rate = 100 * self.n_positive[i] / self.n_known[i] if self.n_known[i] else float("nan")
            t.add_row(str(au), _pct(self.f1[i]), _pct(self.accuracy[i]), str(int(self.n_known[i])),
                      _pct(rate / 100))
        t.add_section()
        t.add_row("Avg.", _pct(self.f1_mean), _pct(self.accuracy_mean), "", "")
        text = _render(t)
        if self.unscored:
            text += f"not scored (no known label): AU {', '.join(map(str, self.unscored))}\n"
        return text

    def __str__(self) -> str:
        return self.table()


def _mean_over_scored(values: np.ndarray) -> float:
    scored = ~np.isnan(values)
    return float(values[scored].mean()) if scored.any() else float("nan")


def _pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{100 * x:.1f}"


def _render(table: Table) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None, force_terminal=False).print(table)
    return out.getvalue()


def evaluate(scores, labels, aus: Sequence[int], threshold: float | Sequence[float] = 0.5) -> AUScores:
    """Per-AU F1 and accuracy of `scores` [frames, n_au] against `labels` [frames, n_au] in {1, 0, -1}.

    A frame is predicted active when its score is >= `threshold` (0.5 for probabilities; a
    sequence gives each AU its own, e.g. from `choose_thresholds` on validation). Each AU
    is scored over its frames with a known label; -1 frames are left out for that AU only. The F1
    of an AU with no active prediction and no active label is defined as 0 (as sklearn's
    ``f1_score(..., zero_division=0)``); an AU with no known label at all is NaN (see AUScores).
    Accepts numpy arrays or torch tensors.
    """
    s = _as_numpy(scores, "scores")
    y = _as_numpy(labels, "labels")
    aus = list(aus)
    if s.shape != y.shape or s.shape[1] != len(aus):
        raise ConfigError(f"scores {s.shape}, labels {y.shape} and {len(aus)} AUs ({aus}) do not match")
    if np.isnan(s).any():
        raise ConfigError("scores contain NaN; the model diverged or a prediction was never written")
    bad = ~np.isin(y, (-1, 0, 1))
    if bad.any():
        raise ConfigError(f"labels must be 1, 0 or -1 (unknown), got values {np.unique(y[bad]).tolist()}")
    t = np.asarray(threshold, dtype=np.float64)
    if t.ndim > 1 or (t.ndim == 1 and len(t) != len(aus)):
        raise ConfigError(f"{t.size} thresholds for {len(aus)} AUs; give one, or one per AU")
    known = y >= 0
    predicted = (s >= t) & known
    active = (y == 1)
    tp = (predicted & active).sum(0)
    fp = (predicted & ~active).sum(0)
    fn = (~predicted & active).sum(0)
    n_known = known.sum(0)
    tn = n_known - tp - fp - fn
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(n_known > 0, (tp + tn) / np.maximum(n_known, 1), np.nan)
    f1 = np.where(n_known > 0, _f1(tp, fp, fn), np.nan)
    return AUScores(aus, f1, accuracy, n_known, active.sum(0), t.tolist())


def choose_thresholds(scores, labels, aus: Sequence[int], default: float = 0.5) -> list[float]:
    """Per AU, the threshold that maximises F1 on these (validation) frames.

    Candidates are the midpoints between consecutive distinct scores (plus the extremes), so
    the choice does not depend on a grid; ties keep the candidate closest to `default`. An AU
    with no known positive label keeps `default`. Call it on validation subjects only: a
    threshold chosen on the test split would inflate the number it is scored with.
    """
    s = _as_numpy(scores, "scores").astype(np.float64)
    y = _as_numpy(labels, "labels")
    out = []
    for i in range(len(list(aus))):
        known = y[:, i] >= 0
        si, yi = s[known, i], y[known, i] == 1
        if not yi.any():
            out.append(float(default))
            continue
        u = np.unique(si)
        cand = np.concatenate([[u[0] - 1e-6], (u[1:] + u[:-1]) / 2, [u[-1] + 1e-6]]) if len(u) > 1 else u
        pred = si[None, :] >= cand[:, None]
        tp = (pred & yi).sum(1)
        fp = (pred & ~yi).sum(1)
        fn = yi.sum() - tp
        f1 = _f1(tp, fp, fn)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        out.append(float(cand[best[np.argmin(np.abs(cand[best] - default))]]))
    return out


def trivial_all_active(labels, aus: Sequence[int]) -> AUScores:
    """Scores of the predictor that calls every AU active on every frame (F1 = 2r/(1+r), acc = r):
    the floor any reported F1 should be read against."""
    y = _as_numpy(labels, "labels")
    return evaluate(np.ones_like(y), y, aus)


@dataclass
class FoldSummary:
    """Mean and spread over folds: per AU (in `aus` order) and for the AU mean ("Avg.").

    The spread is the sample standard deviation over folds (ddof=1; NaN for a single fold)."""

    aus: list[int]
    n_folds: int
    f1_mean: np.ndarray
    f1_std: np.ndarray
    accuracy_mean: np.ndarray
    accuracy_std: np.ndarray
    avg_f1_mean: float
    avg_f1_std: float
    avg_accuracy_mean: float
    avg_accuracy_std: float

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}

    def table(self, title: str | None = None) -> str:
        t = Table(title=title or f"mean ± std over {self.n_folds} fold(s)")
        for name in ("AU", "F1 %", "Acc %"):
            t.add_column(name, justify="right", no_wrap=True)
        for i, au in enumerate(self.aus):
            t.add_row(str(au), _pm(self.f1_mean[i], self.f1_std[i]),
                      _pm(self.accuracy_mean[i], self.accuracy_std[i]))
        t.add_section()
        t.add_row("Avg.", _pm(self.avg_f1_mean, self.avg_f1_std),
                  _pm(self.avg_accuracy_mean, self.avg_accuracy_std))
        return _render(t)

    def __str__(self) -> str:
        return self.table()


def _pm(mean: float, std: float) -> str:
    return _pct(mean) if np.isnan(std) else f"{_pct(mean)} ± {100 * std:.1f}"


def mean_sd(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample SD (ddof=1) of the known values (None and NaN left out): (None, None)
    for none, SD None for one. The fold mean +- SD of one number, as `fold_summary` gives it
    for every AU at once; the leaderboard's cells."""
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)


def _std(values: np.ndarray) -> np.ndarray:
    if values.shape[0] < 2:
        return np.full(values.shape[1:], np.nan)
    return values.std(axis=0, ddof=1)


def fold_summary(folds: Sequence[AUScores]) -> FoldSummary:
    """Mean and sample std over folds of each AU's F1 and accuracy and of the per-fold AU means
    (the fold mean of "Avg." is the number papers report). All folds must score the same AUs."""
    folds = list(folds)
    if not folds:
        raise ConfigError("fold_summary needs the scores of at least one fold")
    aus = folds[0].aus
    for k, f in enumerate(folds[1:], start=2):
        if list(f.aus) != list(aus):
            raise ConfigError(f"fold {k} scores AUs {f.aus}, fold 1 scores {aus}; summarise like with like")
    f1 = np.stack([f.f1 for f in folds])
    acc = np.stack([f.accuracy for f in folds])
    avg_f1 = np.array([[f.f1_mean] for f in folds])
    avg_acc = np.array([[f.accuracy_mean] for f in folds])
    return FoldSummary(list(aus), len(folds), f1.mean(0), _std(f1), acc.mean(0), _std(acc),
                       float(avg_f1.mean()), float(_std(avg_f1)[0]),
                       float(avg_acc.mean()), float(_std(avg_acc)[0]))
