"""A noise study read as drops: how far each loss falls from its own clean score.

Two losses seldom start from the same clean F1, so comparing their noisy F1 mixes how good each
is with how much noise costs it. Here, per kind and level, each loss's drop (clean F1 minus
noisy F1, in points) and, for each other loss against the first, the difference of the two
drops (positive: the other loss loses more). Every interval is a paired subject bootstrap
(`stats.contrast_bootstrap`): all settings of one study are tested on the same synthetic
subjects, so one resample scores them all. A difference whose interval holds 0 is reported as
"no difference shown", never as a win.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import ResultsError
from ..results.rescore import _files_by_fold
from ..results.stats import contrast_bootstrap, fold_counts_from_files

DROP_COLUMNS = ("kind", "level", "loss", "versus", "what", "points", "low", "high", "reading", "flag")


def _counts(setting):
    ok = [r for r in setting.rows if r.status == "ok"]
    return fold_counts_from_files(_files_by_fold(ok)) if ok else None


def reading(low: float, high: float) -> str:
    """What an interval of a drop difference supports, in words a README may repeat."""
    if low > 0:
        return "loses more"
    if high < 0:
        return "loses less"
    return "no difference shown"


def noise_drops(settings: Sequence, *, n_boot: int = 2000, counts_of=_counts) -> tuple[list[dict], list[str]]:
    """(rows of DROP_COLUMNS in points, notes on what could not be computed); `counts_of(setting)`
    gives a setting's per-fold test counts (default: from its rows' stored predictions)."""
    losses = list(dict.fromkeys(s.loss for s in settings))
    clean = {s.loss: s for s in settings if s.level == 0}
    counts = {id(s): counts_of(s) for s in settings}
    out, notes = [], []
    for s in settings:
        if s.level == 0 or s.loss not in clean:
            continue
        pair = [counts[id(clean[s.loss])], counts[id(s)]]
        if None in pair:
            notes.append(f"{s.loss} {s.kind} {s.level:g}: no finished fold for the drop")
            continue
        try:
            drop, flag = contrast_bootstrap(pair, (1, -1), n_boot=n_boot)
        except ResultsError as e:
            notes.append(f"{s.loss} {s.kind} {s.level:g}: {e}")
            continue
        out.append(_row(s, "", "drop", drop, flag, ""))
        first = next((o for o in settings if o.kind == s.kind and o.level == s.level and o.loss == losses[0]), None)
        if first is None or first is s or losses[0] not in clean:
            continue
        four = [counts[id(clean[s.loss])], counts[id(s)], counts[id(clean[losses[0]])], counts[id(first)]]
        if None in four:
            continue
        try:
            diff, flag = contrast_bootstrap(four, (1, -1, -1, 1), n_boot=n_boot)
        except ResultsError as e:
            notes.append(f"{s.loss} vs {losses[0]} {s.kind} {s.level:g}: {e}")
            continue
        out.append(_row(s, losses[0], "drop difference", diff, flag, reading(diff.low, diff.high)))
    return out, notes


def _row(s, versus: str, what: str, interval, flag: str, text: str) -> dict:
    return {"kind": s.kind, "level": s.level, "loss": s.loss, "versus": versus, "what": what,
            "points": 100 * interval.estimate, "low": 100 * interval.low, "high": 100 * interval.high,
            "reading": text, "flag": flag}
