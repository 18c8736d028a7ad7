"""Another tool's per-frame AU output scored on a store's folds with austack's own metric.

Every CSV row is matched to a stored frame (`match.py`) or counted as unmatched with the
reason; rows of frames without a face are counted apart; test frames no row describes are
counted as missing. None of these is scored as a negative unless `missing="negative"` asks
for it (then a tool pays for the faces it did not find), and the report says which. Only the
AUs both the store and the tool have are scored: per fold `metrics.evaluate` at the tool's
threshold, `stats.bootstrap` over the fold's test subjects, and `metrics.fold_summary` over
folds, exactly as for austack's own detectors.
"""
from __future__ import annotations

import csv
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Sequence

import numpy as np

from ..errors import ConfigError, ResultsError
from ..fileio import sha256_file
from ..metrics import AUScores, evaluate, fold_summary
from ..results.stats import N_BOOT, FoldCounts, bootstrap, confusion_by_subject
from ..store import Store, open_store
from .match import IMAGE_EXT, FrameIndex
from .tools import ToolStyle, au_value, detect, frame_number, tool as tool_style

MISSING = ("skip", "negative")
EXAMPLES = 10   # unmatched rows named in the report; the rest are counted


@dataclass
class CsvFile:
    path: str
    sha256: str
    tool: str
    rows: int
    matched: int = 0
    unmatched: int = 0
    no_face: int = 0
    extra_faces: int = 0
    duplicates: int = 0


@dataclass
class Predictions:
    """Per stored row: the tool's 0/1 call per scored AU (NaN where no row), and the rows
    whose CSV line said no face was found."""

    aus: list[int]
    calls: np.ndarray               # [N, A] float, NaN = no prediction
    no_face: np.ndarray             # [N] bool
    files: list[CsvFile]
    unmatched: list[dict] = field(default_factory=list)   # the first EXAMPLES, with reasons
    unmatched_reasons: Counter = field(default_factory=Counter)


def _read(path: Path) -> tuple[list[str], list[dict]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, skipinitialspace=True)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            return header, list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"cannot read {path} as CSV ({e}); give the tool's per-frame CSV", path=path) from None


def _row_key(index: FrameIndex, style: ToolStyle, header: list[str], row: dict, csv_path: Path,
             frame_base: int) -> tuple[int | None, str]:
    """(stored row, "") or (None, why)."""
    frame_col = style.first(header, style.frame_columns)
    input_col = style.first(header, style.input_columns)
    frame = frame_number(row, frame_col)
    source = (row.get(input_col) or "").strip() if input_col else ""
    if source:
        rel = index.relative(source)
        is_image = PurePath(rel).suffix.lower() in IMAGE_EXT
        folders = tuple(rel.parts[:-1])
        subject, session, why = index.unit(folders + (PurePath(rel).stem,))
        if subject is None or session is None:
            return None, why
        if is_image:
            digits = re.findall(r"\d+", PurePath(rel).stem)
            if not digits:
                return None, "no frame number in the image name"
            stored = index.from_image(int(digits[-1]))
        else:
            if frame is None:
                return None, f"a video row without a frame number ({frame_col or 'no frame column'})"
            stored, why = index.from_sequence(subject, session, frame - frame_base)
            if stored is None:
                return None, why
    else:
        subject, session, why = index.unit(tuple(csv_path.parent.parts[-2:]) + (csv_path.stem,))
        if subject is None or session is None:
            return None, why
        if frame is None:
            return None, f"no frame number ({frame_col or 'no frame column'}) and no input path"
        stored, why = index.from_sequence(subject, session, frame - frame_base)
        if stored is None:
            return None, why
    row_i = index.lookup(subject, session, stored)
    if row_i is None:
        return None, f"{subject}/{session} frame {stored} is not in the store"
    return row_i, ""


def read_predictions(store: Store, csvs: Sequence[str | os.PathLike], *, tool: str | None = None,
                     raw_root: str | os.PathLike | None = None, frame_base: int | None = None) -> Predictions:
    """Match every row of `csvs` to the store; the AUs are those of the store the tool has."""
    if not csvs:
        raise ConfigError("give at least one prediction CSV")
    root = raw_root if raw_root is not None else (store.attrs.get("source") or {}).get("root")
    index = FrameIndex(store, Path(root).expanduser().resolve() if root else None)
    parsed = []
    for p in map(Path, csvs):
        if not p.is_file():
            raise ConfigError(f"prediction CSV {p} does not exist", path=p)
        header, rows = _read(p)
        style = tool_style(tool) if tool else detect(header, str(p))
        columns = style.au_columns(header)
        if not columns:
            raise ConfigError(f"{p}: no {style.title} AU columns ({style.au_pattern}) in its header; "
                              f"check --tool", path=p)
        parsed.append((p, header, rows, style, columns))
    styles = sorted({style.name for _, _, _, style, _ in parsed})
    if len(styles) > 1:
        raise ConfigError(f"the CSVs are of several tools ({', '.join(styles)}); score one tool's output at a time")
    tool_aus = set.intersection(*(set(c) for *_, c in parsed))
    aus = [a for a in store.aus if a in tool_aus]
    if not aus:
        raise ConfigError(f"the CSVs' AUs {sorted(tool_aus)} and the store's {list(store.aus)} share none")
    calls = np.full((len(store), len(aus)), np.nan)
    no_face = np.zeros(len(store), bool)
    seen = np.zeros(len(store), bool)
    out = Predictions(aus, calls, no_face, [])
    for p, header, rows, style, columns in parsed:
        base = style.frame_base if frame_base is None else frame_base
        info = CsvFile(str(p.resolve()), sha256_file(p), style.name, len(rows))
        for line, row in enumerate(rows, start=2):
            if style.extra_face(row):
                info.extra_faces += 1
                continue
            i, why = _row_key(index, style, header, row, p, base)
            if i is None:
                info.unmatched += 1
                group = f"{why.split(' frame ')[0]}: frames not in the store" if "not in the store" in why else why
                out.unmatched_reasons[group] += 1
                if len(out.unmatched) < EXAMPLES:
                    out.unmatched.append({"file": str(p), "line": line, "why": why})
                continue
            if seen[i]:
                info.duplicates += 1
                continue
            seen[i] = True
            info.matched += 1
            values = [au_value(row, columns[a]) for a in aus]
            if not style.face_found(row) or any(v is None for v in values):
                no_face[i] = True
                info.no_face += 1
                continue
            calls[i] = [1.0 if v >= style.threshold else 0.0 for v in values]
        out.files.append(info)
    return out


@dataclass
class FoldScore:
    fold: int
    test_frames: int
    scored_frames: int
    missing_frames: int       # test frames no CSV row describes
    no_face_frames: int       # test frames whose row says no face was found
    scores: AUScores
    interval: object          # stats.Bootstrap, or the reason it is withheld (a str)
    rows: np.ndarray          # store rows scored
    probs: np.ndarray         # the 0/1 calls scored [n, A]
    labels: np.ndarray
    subjects: np.ndarray      # subject of each scored row

    def counts(self) -> FoldCounts:
        names, counts = confusion_by_subject(self.probs, self.labels, self.subjects, [0.5] * self.probs.shape[1])
        return FoldCounts(self.fold, names, counts[None])

    def to_dict(self) -> dict:
        return {"fold": self.fold, "test_frames": self.test_frames, "scored_frames": self.scored_frames,
                "missing_frames": self.missing_frames, "no_face_frames": self.no_face_frames,
                "f1": self.scores.f1.tolist(), "accuracy": self.scores.accuracy.tolist(),
                "f1_mean": self.scores.f1_mean, "accuracy_mean": self.scores.accuracy_mean,
                "n_positive": self.scores.n_positive.tolist(), "interval": _interval_dict(self.interval)}


@dataclass
class ScoreReport:
    store: str
    store_identity: str
    dataset: str
    protocol: str
    protocol_hash: str
    synthetic: bool
    label_noise: float | None
    tool: str
    tool_version: str | None
    missing: str
    aus: list[int]
    store_only_aus: list[int]
    predictions: Predictions
    folds: list[FoldScore]
    outside_folds: int        # matched rows of frames in no scored fold's test split
    n_boot: int = N_BOOT

    @property
    def summary(self):
        return fold_summary([f.scores for f in self.folds])

    def overall_interval(self):
        """Subject bootstrap of the fold-mean F1, stratified by fold (as for a leaderboard row),
        or why there is none (a str: too few test subjects)."""
        return _interval_or_reason([f.counts() for f in self.folds], self.aus, self.n_boot)

    def to_dict(self) -> dict:
        p = self.predictions
        s = self.summary
        return {"store": self.store, "store_identity": self.store_identity, "dataset": self.dataset,
                "protocol": self.protocol, "protocol_hash": self.protocol_hash, "synthetic": self.synthetic,
                "tool": self.tool, "tool_version": self.tool_version, "missing": self.missing,
                "aus": self.aus, "store_only_aus": self.store_only_aus,
                "csvs": [vars(f) for f in p.files],
                "rows": {"total": sum(f.rows for f in p.files), "matched": sum(f.matched for f in p.files),
                         "unmatched": sum(f.unmatched for f in p.files),
                         "no_face": sum(f.no_face for f in p.files),
                         "extra_faces": sum(f.extra_faces for f in p.files),
                         "duplicates": sum(f.duplicates for f in p.files),
                         "outside_scored_folds": self.outside_folds},
                "unmatched_reasons": dict(p.unmatched_reasons), "unmatched_examples": p.unmatched,
                "folds": [f.to_dict() for f in self.folds],
                "mean": {"f1": s.f1_mean.tolist(), "f1_sd": s.f1_std.tolist(), "avg_f1": s.avg_f1_mean,
                         "avg_f1_sd": s.avg_f1_std, "avg_accuracy": s.avg_accuracy_mean},
                "interval": _interval_dict(self.overall_interval())}


def score(store_path: str | os.PathLike, csvs: Sequence[str | os.PathLike], *, folds: Sequence[int] | None = None,
          tool: str | None = None, tool_version: str | None = None, raw_root: str | os.PathLike | None = None,
          frame_base: int | None = None, missing: str = "skip", n_boot: int = N_BOOT) -> ScoreReport:
    """Score the CSVs on the test split of each fold (all of the store's protocol by default)."""
    if missing not in MISSING:
        raise ConfigError(f"unknown missing-frame policy {missing!r}; expected one of {', '.join(MISSING)}")
    with open_store(store_path) as store:
        protocol = store.protocol()
        wanted = list(folds) if folds else [f.index for f in protocol.folds]
        for k in wanted:
            protocol.fold(k)
        preds = read_predictions(store, csvs, tool=tool, raw_root=raw_root, frame_base=frame_base)
        cols = [store.aus.index(a) for a in preds.aus]
        labels_all = store.labels[:, cols]
        have = ~np.isnan(preds.calls[:, 0])
        matched_any = have | preds.no_face
        in_folds = np.zeros(len(store), bool)
        results = []
        for k in wanted:
            test = store.get_subset(protocol, fold=k, split="test")
            in_folds[test] = True
            use = test if missing == "negative" else test[have[test]]
            calls = np.nan_to_num(preds.calls[use], nan=0.0)
            labels = labels_all[use]
            scores = evaluate(calls, labels, preds.aus, threshold=0.5)
            f = FoldScore(k, int(len(test)), int(len(use)), int((~matched_any[test]).sum()),
                          int(preds.no_face[test].sum()), scores, None, use, calls, labels, store.subjects[use])
            f.interval = _interval_or_reason([f.counts()], preds.aus, n_boot)
            results.append(f)
        return ScoreReport(str(store.path), store.identity, store.dataset, protocol.id, protocol.hash,
                           store.source_synthetic, store.source_noise, tool or preds.files[0].tool, tool_version,
                           missing, preds.aus, [a for a in store.aus if a not in preds.aus], preds, results,
                           int((matched_any & ~in_folds).sum()), n_boot)


def _interval_or_reason(counts, aus, n_boot: int):
    try:
        return bootstrap(counts, aus, n_boot=n_boot)
    except ResultsError as e:   # a fold of one test subject: no interval, and the report says why
        return str(e)


def _interval_dict(interval) -> dict:
    return {"withheld": interval} if isinstance(interval, str) else interval.to_dict()
