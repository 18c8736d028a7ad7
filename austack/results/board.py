"""Leaderboard rows: measured results aggregated into experiments, beside the published numbers.

A measured row is one *experiment*: rows of the results database with the same dataset,
protocol (id and hash), store identity (`store_checksum`), synthetic flag, comparability and
`config_hash` (every setting that can change the number). Only folds and seeds vary inside
it, so no row ever averages two different experiments. Rows from databases older than the
config hash are grouped by their whole `config` minus the settings that cannot change the
number (fold, seed, device, workers, paths), so they never merge different settings either.

Inside an experiment each fold is first averaged over its seeds; per-AU F1, Avg (the mean
over AUs of each fold) and accuracy are then the mean and the sample standard deviation
(ddof=1) over folds. All values are percent. With `ci=True` each row also carries the
subject-bootstrap 95% interval of `austack.results.rescore.interval_for_rows`.

Results on synthetic stores form their own board ("bp4d layout, synthetic") and never sit
beside the published rows of the real dataset. Cross-dataset rows (trained on one store, scored
on another: docs/cross-dataset.md) form a board per (source -> target) over the AUs both label,
with the published cross-dataset numbers; the source store and the target split are part of
their experiment. docs/results.md says all this at more length.
"""
from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterable, Sequence

from ..errors import AustackError
from ..metrics import mean_sd
from ..protocols import Protocol, load_protocol, shared_aus
from .external import is_external, method_label, setup_label
from .schema import ResultRow
from .identity import results_version_of
from .setup_code import init_of, measured_code, measured_facts

MEASURED, PUBLISHED = "measured", "published"
KINDS = (MEASURED, PUBLISHED)
# Published tables shown by default; ablations and hyperparameter sweeps only with show_all.
DEFAULT_PUBLISHED_KINDS = ("comparison", "encoders", "cross-dataset")
MAX_NAMED_FAILURES = 10   # failed runs named one per line in a board's notes; the rest counted


@dataclass(frozen=True)
class RowCI:
    """A row's subject-bootstrap interval, percent: (estimate, low, high) of Avg and per AU."""

    avg: tuple[float, float, float]
    per_au: dict[int, tuple[float, float, float]]
    n_subjects: int
    n_boot: int
    level: float
    flag: str = ""                 # few test subjects: coverage not checked (stats.MIN_SUBJECTS_PER_FOLD)

    def to_dict(self, aus: Sequence[int]) -> dict[str, Any]:
        def one(t):
            if t is None or any(math.isnan(x) for x in t):
                return None
            return dict(zip(("estimate", "low", "high"), (round(x, 4) for x in t)))
        from .stats import METHOD
        return {"level": self.level, "n_boot": self.n_boot, "n_subjects": self.n_subjects, "method": METHOD,
                "flag": self.flag, "avg": one(self.avg), "per_au": [one(self.per_au.get(a)) for a in aus]}


@dataclass(frozen=True)
class BoardRow:
    """One line of a leaderboard, in percent: a measured experiment or a published result."""

    kind: str                              # measured | published
    method: str                            # "resnet18 + wce", or the published method's label
    setup: str                             # what distinguishes the row: options, epochs, weights / table, venue
    f1: dict[int, float | None]            # AU -> mean F1 over folds, percent
    f1_sd: dict[int, float | None]         # AU -> sample std over folds
    avg: float | None
    avg_sd: float | None = None
    accuracy: float | None = None
    accuracy_sd: float | None = None
    folds: tuple[int, ...] = ()            # folds present (measured)
    folds_expected: int | None = None      # folds the protocol defines
    seeds: int = 0
    runs: int = 0
    flags: tuple[str, ...] = ()            # caveats: partial, protocol changed, not comparable ...
    citation: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)   # what identifies a measured row
    rank: int = 0                          # 1 = highest Avg among rows of its kind
    best: frozenset[str] = frozenset()     # columns ("AU1", "Avg", "Acc") it alone leads among its kind
    ci: RowCI | None = None                # with ci=True, when the predictions are stored
    ci_missing: str = ""                   # why a CI was asked for and could not be computed
    how: str = ""                          # short code of how the number was made (legend: HOW_LEGEND)
    provenance: dict[str, Any] = field(default_factory=dict)   # the facts behind `how`, for json

    @property
    def complete(self) -> bool:
        return self.folds_expected is None or len(self.folds) >= self.folds_expected

    @property
    def config_hash(self) -> str:
        return self.recipe.get("config_hash", "")

    @property
    def store_checksum(self) -> str:
        return self.recipe.get("store_checksum", "")

    def value(self, column: str) -> float | None:
        if column == "Avg":
            return self.avg
        if column == "Acc":
            return self.accuracy
        return self.f1.get(int(column[2:]))


@dataclass
class Leaderboard:
    """One dataset's rows, ranked (`rows`: measured first, then published), and what was hidden.

    A synthetic board holds results on stores made by `austack synth` in the dataset's layout;
    it never holds published rows."""

    dataset: str
    protocol: str | None           # the dataset's current default protocol id
    protocol_hash: str | None
    aus: tuple[int, ...]
    rows: list[BoardRow]
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False
    source: str = ""               # cross-dataset board: the dataset that trained ("" for the others)

    @property
    def columns(self) -> list[str]:
        return [f"AU{a}" for a in self.aus] + ["Avg", "Acc"]

    @property
    def heading(self) -> str:
        name = f"{self.source} -> {self.dataset}" if self.source else self.dataset
        return f"{name} layout, synthetic" if self.synthetic else name

    def of_kind(self, kind: str) -> list[BoardRow]:
        return [r for r in self.rows if r.kind == kind]


# ---- identity ------------------------------------------------------------------------------
def dataset_key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


def _unhashed() -> frozenset[str]:
    """Config keys that cannot change a number: BenchConfig's unhashed fields, plus names
    that older configs used for the same things."""
    from ..runs.config import BenchConfig

    own = {f.name for f in fields(BenchConfig) if not f.metadata.get("hashed", True)}
    return frozenset(own | {"data", "store", "fold", "folds", "seed", "device", "workers", "out_dir", "db",
                            "recipe", "compile"})


def experiment_key(row: ResultRow) -> tuple:
    """Rows with equal keys differ only in fold and seed: one leaderboard row."""
    if row.config_hash:
        setting = ("config_hash", row.config_hash)
    else:   # a database older than the config hash: the settings themselves
        skip = _unhashed()
        config = {k: v for k, v in (row.config or {}).items() if k not in skip}
        setting = ("config", json.dumps(config, sort_keys=True, default=str), row.backbone, row.loss,
                   json.dumps(row.loss_options, sort_keys=True, default=str), row.pretrained, row.epochs)
    return (dataset_key(row.dataset), bool(row.synthetic), dataset_key(row.source_dataset), row.protocol,
            row.protocol_hash, row.store_checksum, row.comparable, setting, row.source_store_checksum,
            row.test_split, results_version_of(row))


def board_key(row: ResultRow) -> tuple[str, bool, str]:
    """(dataset scored, synthetic, source dataset or "" when the row was tested on its own store)."""
    return dataset_key(row.dataset), bool(row.synthetic), dataset_key(row.source_dataset)


# ---- aggregation ---------------------------------------------------------------------------
def _protocol(name: str) -> Protocol | None:
    try:
        return load_protocol(name)
    except AustackError:
        return None


def _percent(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else 100.0 * x


def _fold_avg(row: ResultRow) -> float | None:
    if row.f1_mean is not None:
        return row.f1_mean
    return mean_sd(row.f1)[0]


def _setup(row: ResultRow, show_store: bool) -> str:
    parts = [f"cfg {row.config_hash[:8]}"] if row.config_hash else []
    parts += [f"{k}={v}" for k, v in sorted(row.loss_options.items())]
    parts.append(f"{row.epochs} ep")
    init = init_of(row)     # a weights tag from the config, or the weight file's name
    parts.append("random init" if init == "random" else f"weights {init}")
    if show_store:
        parts.append(f"store {row.store_checksum[:8]}")
    if row.cross:
        parts.append("whole target" if row.test_split == "all" else f"target {row.test_split} test")
        if show_store:
            parts.append(f"source {row.source_store_checksum[:8]}")
    return "; ".join(parts)


def _flags(first: ResultRow, proto: Protocol | None, n_folds: int) -> tuple[str, ...]:
    flags = []
    if first.cross:   # folds are the source's; the target's protocol says what was scored
        target = _protocol(first.protocol)
        if target is not None and target.hash != first.protocol_hash:
            flags.append(f"target protocol changed: ran {first.protocol_hash}, now {target.hash}")
        name, ran = first.source_protocol, first.source_protocol_hash
    else:
        name, ran = first.protocol, first.protocol_hash
    if proto is None:
        flags.append(f"protocol {name} not found")
    elif proto.hash != ran:
        flags.append(f"protocol changed: ran {ran}, now {proto.hash}")
    if proto is not None and n_folds < len(proto.folds):
        flags.append(f"partial: {n_folds}/{len(proto.folds)} folds")
    if not first.comparable:
        flags.append(f"not comparable ({_why_not_comparable(first)})")
    if is_external(first):
        flags.append("external tool (austack score)")
    return tuple(flags)


def _why_not_comparable(row: ResultRow) -> str:
    """A paper recipe run from random weights (`--pretrained none`), else debug subsampling."""
    paper = str(row.config.get("recipe") or "").startswith("table")
    return "random init" if paper and not row.pretrained and not row.config.get("limit_train") else "debug subsample"


def _row_ci(rows: list[ResultRow]) -> tuple[RowCI | None, str]:
    """The subject-bootstrap interval of one experiment, or why there is none."""
    from .rescore import interval_for_rows

    try:
        b = interval_for_rows(rows)
    except (AustackError, OSError, ValueError, KeyError) as e:
        return None, str(e).splitlines()[0] if str(e) else type(e).__name__
    pct = lambda i: (100 * i.estimate, 100 * i.low, 100 * i.high)   # noqa: E731
    return RowCI(pct(b.mean_f1), {a: pct(i) for a, i in zip(b.aus, b.per_au)}, b.n_subjects, b.n_boot,
                 b.level, b.flag), ""


def _experiment(rows: list[ResultRow], show_store: bool, ci: bool) -> BoardRow:
    """One measured board row from the result rows of one experiment."""
    first = rows[0]
    by_fold: dict[int, list[ResultRow]] = defaultdict(list)
    for r in rows:
        by_fold[r.fold].append(r)

    def over_folds(get) -> tuple[float | None, float | None]:   # seeds averaged within a fold first
        return mean_sd(mean_sd(get(r) for r in fold_rows)[0] for fold_rows in by_fold.values())

    f1, f1_sd = {}, {}
    for a in sorted({a for r in rows for a in r.aus}):
        f1[a], f1_sd[a] = over_folds(lambda r: _percent(r.f1[r.aus.index(a)]) if a in r.aus else None)
    avg, avg_sd = over_folds(lambda r: _percent(_fold_avg(r)))
    acc, acc_sd = over_folds(lambda r: _percent(r.accuracy_mean))
    proto = _protocol(first.source_protocol if first.cross else first.protocol)   # the one whose folds ran
    interval, missing = _row_ci(rows) if ci else (None, "")
    facts = measured_facts(first)
    return BoardRow(
        kind=MEASURED, method=method_label(first) if is_external(first) else f"{first.backbone} + {first.loss}",
        setup=setup_label(first) if is_external(first) else _setup(first, show_store),
        f1=f1, f1_sd=f1_sd, avg=avg, avg_sd=avg_sd, accuracy=acc, accuracy_sd=acc_sd,
        folds=tuple(sorted(by_fold)), folds_expected=len(proto.folds) if proto else None,
        seeds=len({r.seed for r in rows}), runs=len(rows), flags=_flags(first, proto, len(by_fold)),
        ci=interval, ci_missing=missing, how=measured_code(facts), provenance=facts,
        recipe={"dataset": dataset_key(first.dataset), "synthetic": bool(first.synthetic),
                "backbone": first.backbone, "loss": first.loss, "loss_options": first.loss_options,
                "pretrained": first.pretrained, "epochs": first.epochs, "protocol": first.protocol,
                "protocol_hash": first.protocol_hash, "comparable": first.comparable,
                "config_hash": first.config_hash, "store_checksum": first.store_checksum,
                "label_noise": facts["training_noise"],
                "store_label_noise": (first.provenance or {}).get("store_label_noise"),
                "results_version": results_version_of(first), "source": dataset_key(first.source_dataset),
                "source_protocol": first.source_protocol, "source_store_checksum": first.source_store_checksum,
                "test_split": first.test_split})


def aggregate(results: Iterable[ResultRow], ci: bool = False) -> list[BoardRow]:
    """Measured board rows: one per experiment (ok rows only), each fold averaged over its seeds."""
    groups: dict[tuple, list[ResultRow]] = defaultdict(list)
    for r in results:
        if r.status == "ok":
            groups[experiment_key(r)].append(r)
    stores: dict[tuple, set[tuple]] = defaultdict(set)   # show the stores only where a board has several
    for key, rows in groups.items():
        stores[key[:3]].add((rows[0].store_checksum, rows[0].source_store_checksum))
    return [_experiment(rows, len(stores[key[:3]]) > 1, ci) for key, rows in groups.items()]


def published_rows(published: Iterable[Any]) -> list[BoardRow]:
    """Board rows for `austack.published.PublishedRow`s, numbers as printed."""
    from ..published_provenance import mark

    out = []
    for p in published:
        sds = tuple(getattr(p, "f1_sd", ()) or ())
        prov = getattr(p, "provenance", None)
        facts = prov.to_dict() if prov is not None else {}
        if getattr(p, "same_as", ""):
            facts["same_as"] = p.same_as
        setup = (getattr(p, "extra", None) or {}).get("setup") or ", ".join(
            x for x in (f"Table {p.table}", getattr(p, "venue", "")) if x)
        out.append(BoardRow(
            kind=PUBLISHED, method=getattr(p, "label", p.method), setup=setup,
            f1=dict(zip(p.aus, p.f1)), f1_sd=dict(zip(p.aus, sds)) if sds else {a: None for a in p.aus},
            avg=p.avg, avg_sd=p.avg_sd, accuracy=p.accuracy, flags=tuple(p.flags), citation=p.citation,
            how=mark(prov) if prov is not None else "?", provenance=facts,
            recipe={"protocol": getattr(p, "protocol", None)}))
    return out


def _rank(rows: list[BoardRow], columns: Sequence[str]) -> list[BoardRow]:
    """Sort each kind by Avg (best first); mark a column's best value per kind only where one row
    alone holds it and it is above zero (a tie, or 0.0, leads nothing)."""
    out = []
    for kind in KINDS:
        group = sorted((r for r in rows if r.kind == kind),
                       key=lambda r: (r.avg is None, -(r.avg or 0.0), r.method, r.setup))
        best: dict[int, set[str]] = defaultdict(set)
        for col in columns:
            values = [r.value(col) for r in group]
            top = max((v for v in values if v is not None), default=None)
            leaders = [i for i, v in enumerate(values)
                       if top is not None and v is not None and math.isclose(v, top, abs_tol=1e-9)]
            if len(leaders) == 1 and top > 0:
                best[leaders[0]].add(col)
        out += [replace(r, rank=i + 1, best=frozenset(best[i])) for i, r in enumerate(group)]
    return out


def _ci_notes(rows: Sequence[BoardRow]) -> list[str]:
    return ([f"no CI for #{r.rank} {r.method} ({r.setup}): {r.ci_missing}" for r in rows if r.ci_missing]
            + [f"CI of #{r.rank} {r.method} marked *: {r.ci.flag}" for r in rows if r.ci is not None and r.ci.flag])


def _board_aus(target: str, source: str, found: set[int]) -> tuple[int, ...]:
    """A board's AU columns: its protocol's, or on a cross-dataset board the AUs both datasets'
    protocols label; plus any AU its rows carry."""
    proto = _protocol(target)
    own = set(proto.aus if proto else ())
    if source:
        src = _protocol(source)
        own = set(shared_aus(src.aus, proto.aus)) if src and proto else set()
    return tuple(sorted(found | own))


def _matches(key: tuple[str, bool, str], dataset: str | None) -> bool:
    """`dataset` names the boards of the dataset scored (its own and those of sources scored on
    it); `source->target` names one cross-dataset board."""
    if dataset is None:
        return True
    source, arrow, target = dataset.partition("->")
    if arrow:
        return (key[2], key[0]) == (dataset_key(source), dataset_key(target))
    return key[0] == dataset_key(dataset)


def build_leaderboards(results: Iterable[ResultRow], published: Iterable[Any] = (), dataset: str | None = None,
                       notes: dict[tuple, list[str]] | None = None, ci: bool = False) -> list[Leaderboard]:
    """One leaderboard per (dataset, synthetic, source) present in `results`, `published` or
    `notes` (or only those `dataset` names); within-dataset boards before cross-dataset ones,
    real before synthetic. Published rows join real boards only."""
    rows: dict[tuple[str, bool, str], list[BoardRow]] = defaultdict(list)
    au_sets: dict[tuple[str, bool, str], set[int]] = defaultdict(set)
    for r in aggregate(results, ci=ci):
        key = (r.recipe["dataset"], r.recipe["synthetic"], r.recipe["source"])
        rows[key].append(r)
        au_sets[key].update(r.f1)
    for p in published:
        key = (dataset_key(p.dataset), False, dataset_key(getattr(p, "source_dataset", "") or ""))
        rows[key] += published_rows([p])
        au_sets[key].update(p.aus)
    notes = {(k if len(k) == 3 else (*k, "")): v for k, v in (notes or {}).items()}
    present = sorted(set(rows) | set(notes), key=lambda k: (k[2] != "", k[2], k[0], k[1]))
    wanted = [k for k in present if _matches(k, dataset)]
    if dataset and not wanted:
        source, arrow, target = dataset.partition("->")
        wanted = [(dataset_key(target), False, dataset_key(source)) if arrow else (dataset_key(dataset), False, "")]
    boards = []
    for key in wanted:
        ds, synthetic, source = key
        proto = _protocol(ds)
        board = Leaderboard(dataset=ds, protocol=proto.id if proto else None,
                            protocol_hash=proto.hash if proto else None, aus=_board_aus(ds, source, au_sets[key]),
                            rows=[], notes=list(notes.get(key, [])), synthetic=synthetic, source=source)
        board.rows = _rank(rows[key], board.columns)
        board.notes += _ci_notes(board.rows)
        boards.append(board)
    return boards


def _failure_notes(failed: list[ResultRow]) -> list[str]:
    """Failed runs are named, never dropped silently."""
    lines = [f"{len(failed)} failed fold run(s) (status=error) not shown:"]
    for r in failed[:MAX_NAMED_FAILURES]:
        error = (r.error or "no message").strip().splitlines()[0] if (r.error or "").strip() else "no message"
        lines.append(f"  {r.backbone} + {r.loss} fold {r.fold} seed {r.seed}"
                     f"{f' (cfg {r.config_hash[:8]})' if r.config_hash else ''}: {error}")
    if len(failed) > MAX_NAMED_FAILURES:
        lines.append(f"  ... and {len(failed) - MAX_NAMED_FAILURES} more, all in the database")
    return lines


def _read_db(db_path, dataset: str | None, show_all: bool):
    """(ok rows to show, notes per board key) from a results database."""
    from .db import ResultsDB

    with ResultsDB(db_path, create=False) as db:
        everything = db.query(status=None, include_noncomparable=True)
    results: list[ResultRow] = []
    failed: dict[tuple, list[ResultRow]] = defaultdict(list)
    hidden: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in everything:
        if not _matches(board_key(r), dataset):
            continue
        if r.status != "ok":
            failed[board_key(r)].append(r)
        elif r.comparable or show_all:
            results.append(r)
        else:
            hidden[board_key(r)][_why_not_comparable(r)] += 1
    notes: dict[tuple, list[str]] = defaultdict(list)
    for key, rows in failed.items():
        notes[key] += _failure_notes(rows)
    for key, reasons in hidden.items():
        notes[key] += [f"{n} non-comparable fold result(s) ({why}) hidden; --all shows them"
                       for why, n in sorted(reasons.items())]
    return results, notes


def leaderboards_from_db(db_path: str | os.PathLike | None, dataset: str | None = None, *,
                         published: bool = True, show_all: bool = False, ci: bool = False,
                         other_boards: bool = True) -> list[Leaderboard]:
    """Boards from a results database (None: published numbers only).

    Hidden rows are never dropped silently: failed runs are named and (unless `show_all`) rows
    that are not comparable, and published rows that repeat another table's, are counted in the
    board's notes. With `other_boards=False` (and no `dataset`) only the boards that hold the
    database's rows are shown, each with the published rows of its dataset and protocol; the
    boards left out are named in a note.
    """
    results, notes = _read_db(db_path, dataset, show_all) if db_path is not None else ([], {})
    focus = {board_key(r) for r in results} | set(notes)     # the boards the database has rows on
    notes = defaultdict(list, notes)
    pubs: list[Any] = []
    if published:
        from ..published import load_cross_published, load_published
        pubs = [p for p in [*load_published(), *load_cross_published()]
                if _matches((dataset_key(p.dataset), False, dataset_key(p.source_dataset)), dataset)
                and (show_all or getattr(p, "kind", "comparison") in DEFAULT_PUBLISHED_KINDS)]
        repeats = [p for p in pubs if getattr(p, "same_as", "") and not show_all]
        pubs = [p for p in pubs if p not in repeats]
        for ds in sorted({dataset_key(p.dataset) for p in repeats}):
            n = sum(dataset_key(p.dataset) == ds for p in repeats)
            same = ", ".join(p.same_as for p in repeats if dataset_key(p.dataset) == ds)
            notes[ds, False, ""].append(f"{n} published row(s) hidden that repeat another table's row ({same}); "
                                    f"--all shows them")
    if other_boards or dataset is not None or not focus:
        return build_leaderboards(results, pubs, dataset=dataset, notes=notes, ci=ci)
    protocols = defaultdict(set)
    for r in results:
        protocols[board_key(r)].add(_protocol_name(r.protocol))
    def key(p) -> tuple[str, bool, str]:   # a published row's board (its numbers are on real data)
        return dataset_key(p.dataset), False, dataset_key(p.source_dataset)

    near = [p for p in pubs if key(p) in focus and _protocol_name(p.protocol) in protocols[key(p)]]
    boards = build_leaderboards(results, near, notes={k: v for k, v in notes.items() if k in focus}, ci=ci)
    left_out = sorted({dataset_key(p.dataset) for p in pubs} - {b.dataset for b in boards if not b.synthetic})
    if left_out and boards:
        boards[-1].notes.append(f"published boards of {', '.join(left_out)} not shown (none of the database's "
                                f"rows are there); --other-boards shows them")
    return boards


def _protocol_name(protocol: str | None) -> str:
    """A protocol id without its version: published rows name "bp4d-3fold", results "bp4d-3fold@v1"."""
    return (protocol or "").split("@")[0]
