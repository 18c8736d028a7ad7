"""Scoring other tools' per-frame AU output on a store's folds (docs/export.md).

`score(store, csvs)` matches each CSV row to a stored frame, counts what it cannot match, and
scores the AUs both sides have with austack's own metric and subject bootstrap;
`record(report, db)` stores the result as external rows beside trained detectors.
"""
from .score import MISSING, Predictions, ScoreReport, read_predictions, score
from .tools import TOOLS, detect

__all__ = ["MISSING", "TOOLS", "Predictions", "ScoreReport", "detect", "read_predictions", "score"]
