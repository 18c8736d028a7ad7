"""Leaderboards: measured results aggregated over folds, beside the published numbers.

One `Leaderboard` per dataset holds `BoardRow`s of two kinds, ranked separately:
- "measured": one row per recipe (backbone, loss, loss options, pretrained weights, epochs,
  protocol hash, comparable). Each fold is first averaged over its runs (seeds, reruns);
  per-AU F1, Avg (the mean over AUs of each fold) and accuracy are then the mean and the
  sample standard deviation (ddof=1) over folds. All values are percent.
- "published": the rows of `austack.published`, as printed, with their citation.

Every renderer (rich table, csv, markdown, latex, json) works from these row objects, never
from another renderer's text, so all formats agree to their printed precision.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import AustackError, ConfigError
from ..protocols import Protocol, load_protocol
from .schema import ResultRow

MEASURED, PUBLISHED = "measured", "published"
KINDS = (MEASURED, PUBLISHED)
# Published tables shown by default; ablations and hyperparameter sweeps only with show_all.
DEFAULT_PUBLISHED_KINDS = ("comparison", "encoders")
FORMATS = ("table", "csv", "md", "latex", "json")
MISSING = "–"
WRAP_WIDTH = 24   # Setup and Notes wrap beyond this many characters on a narrow terminal


@dataclass(frozen=True)
class BoardRow:
    """One line of a leaderboard, in percent: a measured recipe or a published result."""

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
    flags: tuple[str, ...] = ()            # shown in the Notes column
    citation: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)   # the grouping key of a measured row
    rank: int = 0                          # 1 = highest Avg among rows of its kind
    best: frozenset[str] = frozenset()     # columns ("AU1", "Avg", "Acc") it leads among its kind

    @property
    def complete(self) -> bool:
        return self.folds_expected is None or len(self.folds) >= self.folds_expected

    def value(self, column: str) -> float | None:
        if column == "Avg":
            return self.avg
        if column == "Acc":
            return self.accuracy
        return self.f1.get(int(column[2:]))


@dataclass
class Leaderboard:
    """One dataset's rows, ranked (`rows`: measured first, then published), and what was hidden."""

    dataset: str
    protocol: str | None           # the dataset's current default protocol id
    protocol_hash: str | None
    aus: tuple[int, ...]
    rows: list[BoardRow]
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [f"AU{a}" for a in self.aus] + ["Avg", "Acc"]

    def of_kind(self, kind: str) -> list[BoardRow]:
        return [r for r in self.rows if r.kind == kind]


# ---- aggregation ---------------------------------------------------------------------------
def _dataset_key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


def _protocol(name: str) -> Protocol | None:
    try:
        return load_protocol(name)
    except AustackError:
        return None


def _mean_sd(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)


def _percent(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else 100.0 * x


def _fold_avg(row: ResultRow) -> float | None:
    if row.f1_mean is not None:
        return row.f1_mean
    return _mean_sd(row.f1)[0]


def _recipe_key(row: ResultRow) -> tuple:
    return (_dataset_key(row.dataset), row.backbone, row.loss, json.dumps(row.loss_options, sort_keys=True),
            row.pretrained, row.epochs, row.protocol, row.protocol_hash, row.comparable)


def _setup(row: ResultRow) -> str:
    parts = [f"{k}={v}" for k, v in sorted(row.loss_options.items())]
    parts.append(f"{row.epochs} ep")
    parts.append(f"weights {os.path.basename(row.pretrained)}" if row.pretrained else "random init")
    return "; ".join(parts)


def aggregate(results: Iterable[ResultRow]) -> list[BoardRow]:
    """Measured board rows: one per recipe, each fold averaged over its runs first."""
    groups: dict[tuple, list[ResultRow]] = defaultdict(list)
    for r in results:
        if r.status == "ok":
            groups[_recipe_key(r)].append(r)
    out = []
    for key, rows in groups.items():
        first = rows[0]
        by_fold: dict[int, list[ResultRow]] = defaultdict(list)
        for r in rows:
            by_fold[r.fold].append(r)
        aus = sorted({a for r in rows for a in r.aus})

        def fold_means(get) -> list[float | None]:
            return [_mean_sd(get(r) for r in fold_rows)[0] for fold_rows in by_fold.values()]

        f1, f1_sd = {}, {}
        for a in aus:
            per_au = fold_means(lambda r: _percent(r.f1[r.aus.index(a)]) if a in r.aus else None)
            f1[a], f1_sd[a] = _mean_sd(per_au)
        avg, avg_sd = _mean_sd(fold_means(lambda r: _percent(_fold_avg(r))))
        acc, acc_sd = _mean_sd(fold_means(lambda r: _percent(r.accuracy_mean)))

        proto = _protocol(first.protocol)
        expected = len(proto.folds) if proto else None
        flags = []
        if proto is None:
            flags.append(f"protocol {first.protocol} not found")
        elif proto.hash != first.protocol_hash:
            flags.append(f"protocol changed: ran {first.protocol_hash}, now {proto.hash}")
        if expected is not None and len(by_fold) < expected:
            flags.append(f"partial: {len(by_fold)}/{expected} folds")
        if not first.comparable:
            flags.append("not comparable (debug subsample)")
        out.append(BoardRow(
            kind=MEASURED, method=f"{first.backbone} + {first.loss}", setup=_setup(first),
            f1=f1, f1_sd=f1_sd, avg=avg, avg_sd=avg_sd, accuracy=acc, accuracy_sd=acc_sd,
            folds=tuple(sorted(by_fold)), folds_expected=expected, seeds=len({r.seed for r in rows}),
            runs=len(rows), flags=tuple(flags),
            recipe={"dataset": key[0], "backbone": first.backbone, "loss": first.loss,
                    "loss_options": first.loss_options, "pretrained": first.pretrained,
                    "epochs": first.epochs, "protocol": first.protocol,
                    "protocol_hash": first.protocol_hash, "comparable": first.comparable}))
    return out


def published_rows(published: Iterable[Any]) -> list[BoardRow]:
    """Board rows for `austack.published.PublishedRow`s, numbers as printed."""
    out = []
    for p in published:
        sds = tuple(getattr(p, "f1_sd", ()) or ())
        out.append(BoardRow(
            kind=PUBLISHED, method=getattr(p, "label", p.method),
            setup=", ".join(x for x in (f"Table {p.table}", getattr(p, "venue", "")) if x),
            f1=dict(zip(p.aus, p.f1)), f1_sd=dict(zip(p.aus, sds)) if sds else {a: None for a in p.aus},
            avg=p.avg, avg_sd=p.avg_sd, accuracy=p.accuracy, flags=tuple(p.flags), citation=p.citation))
    return out


def _rank(rows: list[BoardRow], columns: Sequence[str]) -> list[BoardRow]:
    """Sort each kind by Avg (best first) and mark the best value of each column per kind."""
    out = []
    for kind in KINDS:
        group = sorted((r for r in rows if r.kind == kind),
                       key=lambda r: (r.avg is None, -(r.avg or 0.0), r.method, r.setup))
        best: dict[int, set[str]] = defaultdict(set)
        for col in columns:
            values = [r.value(col) for r in group]
            top = max((v for v in values if v is not None), default=None)
            for i, v in enumerate(values):
                if top is not None and v is not None and math.isclose(v, top, abs_tol=1e-9):
                    best[i].add(col)
        out += [replace(r, rank=i + 1, best=frozenset(best[i])) for i, r in enumerate(group)]
    return out


def build_leaderboards(results: Iterable[ResultRow], published: Iterable[Any] = (),
                       dataset: str | None = None, notes: dict[str, list[str]] | None = None) -> list[Leaderboard]:
    """One leaderboard per dataset present in `results` or `published` (or only `dataset`)."""
    rows: dict[str, list[BoardRow]] = defaultdict(list)
    au_sets: dict[str, set[int]] = defaultdict(set)
    for r in aggregate(results):
        rows[r.recipe["dataset"]].append(r)
        au_sets[r.recipe["dataset"]].update(r.f1)
    for p in published:
        rows[_dataset_key(p.dataset)] += published_rows([p])
        au_sets[_dataset_key(p.dataset)].update(p.aus)
    wanted = [_dataset_key(dataset)] if dataset else sorted(rows)
    boards = []
    for ds in wanted:
        proto = _protocol(ds)
        aus = tuple(sorted(au_sets[ds] | set(proto.aus if proto else ())))
        board = Leaderboard(dataset=ds, protocol=proto.id if proto else None,
                            protocol_hash=proto.hash if proto else None, aus=aus, rows=[],
                            notes=list((notes or {}).get(ds, [])))
        board.rows = _rank(rows[ds], board.columns)
        boards.append(board)
    return boards


def leaderboards_from_db(db_path: str | os.PathLike | None, dataset: str | None = None, *,
                         published: bool = True, show_all: bool = False) -> list[Leaderboard]:
    """Boards from a results database (None: published numbers only).

    Hidden rows are never dropped silently: failed runs and (unless `show_all`) rows that are
    not comparable are counted in the board's notes.
    """
    from .db import ResultsDB

    results: list[ResultRow] = []
    notes: dict[str, list[str]] = defaultdict(list)
    if db_path is not None:
        with ResultsDB(db_path, create=False) as db:
            everything = db.query(status=None, include_noncomparable=True)
        failed: dict[str, int] = defaultdict(int)
        hidden: dict[str, int] = defaultdict(int)
        for r in everything:
            ds = _dataset_key(r.dataset)
            if r.status != "ok":
                failed[ds] += 1
            elif r.comparable or show_all:
                results.append(r)
            else:
                hidden[ds] += 1
        for ds, n in failed.items():
            notes[ds].append(f"{n} failed fold run(s) (status=error) not shown")
        for ds, n in hidden.items():
            notes[ds].append(f"{n} non-comparable fold result(s) (debug subsample) hidden; --all shows them")
    pubs: list[Any] = []
    if published:
        from ..published import load_published
        pubs = [p for p in load_published()
                if (dataset is None or _dataset_key(p.dataset) == _dataset_key(dataset))
                and (show_all or getattr(p, "kind", "comparison") in DEFAULT_PUBLISHED_KINDS)]
    return build_leaderboards(results, pubs, dataset=dataset, notes=notes)


# ---- cells shared by the text renderers ---------------------------------------------------
def _fmt(x: float | None, digits: int = 1) -> str:
    return MISSING if x is None else f"{x:.{digits}f}"


def _pm(x: float | None, sd: float | None) -> str:
    return _fmt(x) if sd is None or x is None else f"{x:.1f} ± {sd:.1f}"


def _folds_cell(r: BoardRow) -> str:
    if r.kind == PUBLISHED:
        return ""
    return f"{len(r.folds)}/{r.folds_expected}" if r.folds_expected else str(len(r.folds))


def _notes_cell(r: BoardRow, citations: dict[str, int]) -> str:
    parts = list(r.flags)
    if r.citation:
        parts.append(f"[{citations[r.citation]}]")
    return "; ".join(parts)


def _citations(board: Leaderboard) -> dict[str, int]:
    cites: dict[str, int] = {}
    for r in board.rows:
        if r.citation and r.citation not in cites:
            cites[r.citation] = len(cites) + 1
    return cites


def _title(board: Leaderboard) -> str:
    proto = f"{board.protocol} (hash {board.protocol_hash})" if board.protocol else "no protocol file"
    return f"{board.dataset}: {proto}"


LEGEND = ("F1 and accuracy in percent; Avg = mean F1 over AUs, ± = std over folds. Measured and published "
          "rows are ranked separately; the best value of each column within each kind is bold.")


# ---- renderers -----------------------------------------------------------------------------
def _rich_table(board: Leaderboard):
    """(table, narrowest width that keeps every number, method and word whole)."""
    from rich.table import Table
    from rich.text import Text

    style = {MEASURED: "bold green", PUBLISHED: "bold cyan"}
    cites = _citations(board)
    head = ["#", "Kind", "Method", "Setup", *board.columns, "Folds", "Notes"]
    wrapped = {"Setup", "Notes"}           # the only columns allowed to wrap, at word boundaries
    table = Table(title=Text(_title(board)), caption=Text(LEGEND), caption_justify="left")
    for h in head:
        table.add_column(h, justify="left" if h in ("Kind", "Method", *wrapped) else "right",
                         no_wrap=h not in wrapped)
    widths = [len(h) for h in head]
    for i, kind in enumerate(KINDS):
        rows = board.of_kind(kind)
        if i and rows and board.of_kind(KINDS[0]):
            table.add_section()
        for r in rows:
            cells: list[Text] = [Text(str(r.rank)), Text(kind, style="green" if kind == MEASURED else "cyan"),
                                 Text(r.method), Text(r.setup)]
            for col in board.columns:
                sd = r.avg_sd if col == "Avg" else r.accuracy_sd if col == "Acc" else r.f1_sd.get(int(col[2:]))
                text = Text(_fmt(r.value(col)), style=style[kind] if col in r.best else "")
                if sd is not None:
                    text.append(f"\n±{sd:.1f}", style="dim")
                cells.append(text)
            cells += [Text(_folds_cell(r)), Text(_notes_cell(r, cites))]
            table.add_row(*cells)
            for j, (h, cell) in enumerate(zip(head, cells)):
                # a wrapped column asks for room for a short phrase, never less than its longest word
                pieces = [cell.plain[:WRAP_WIDTH], *cell.plain.split()] if h in wrapped else cell.plain.splitlines()
                widths[j] = max([widths[j], *map(len, pieces)])
    return table, sum(widths) + 3 * len(head) + 1   # one space each side of a cell, one border between


def to_rich(boards: Sequence[Leaderboard]):
    """A rich renderable: one table per board, numbers right-aligned, then notes and citations."""
    return _rich_group(boards)[0]


def _rich_group(boards: Sequence[Leaderboard]):
    from rich.console import Group
    from rich.text import Text

    parts, need = [], 0
    for board in boards:
        table, width = _rich_table(board)
        need = max(need, width)
        parts.append(table)
        parts += [Text(line, style="yellow") for line in board.notes]
        parts += [Text(f"[{n}] {text}", style="dim") for text, n in _citations(board).items()]
    return Group(*parts), need


def print_rich(boards: Sequence[Leaderboard], console=None) -> None:
    """Print on a terminal; a table wider than the terminal overflows rather than squeeze numbers."""
    from rich.console import Console

    console = console or Console()
    renderable, need = _rich_group(boards)
    saved = console.width
    console.width = max(saved, need)
    try:
        console.print(renderable)
    finally:
        console.width = saved


def to_text(boards: Sequence[Leaderboard], color: bool = False, width: int = 160) -> str:
    """The rich table as plain (or ANSI-coloured) text, e.g. for -o FILE."""
    from rich.console import Console

    renderable, need = _rich_group(boards)
    console = Console(file=io.StringIO(), width=max(width, need), record=True,
                      color_system="standard" if color else None)
    console.print(renderable)
    return console.export_text(styles=color)


def _csv_columns(boards: Sequence[Leaderboard]) -> list[str]:
    aus = sorted({a for b in boards for a in b.aus})
    au_cols = [c for a in aus for c in (f"AU{a}", f"AU{a}_sd")]
    return (["dataset", "protocol", "kind", "rank", "method", "setup", "backbone", "loss", "loss_options",
             "pretrained", "epochs", "protocol_hash", "folds", "folds_expected", "seeds", "runs"]
            + au_cols + ["avg", "avg_sd", "accuracy", "accuracy_sd", "best", "notes", "citation"])


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)   # percent: 4 decimals hide float noise, lose nothing


def _record(board: Leaderboard, r: BoardRow) -> dict[str, Any]:
    """One row as plain values: what csv and json write."""
    rec = {"dataset": board.dataset, "protocol": r.recipe.get("protocol", board.protocol), "kind": r.kind,
           "rank": r.rank, "method": r.method, "setup": r.setup,
           "backbone": r.recipe.get("backbone"), "loss": r.recipe.get("loss"),
           "loss_options": r.recipe.get("loss_options"), "pretrained": r.recipe.get("pretrained"),
           "epochs": r.recipe.get("epochs"), "protocol_hash": r.recipe.get("protocol_hash"),
           "folds": list(r.folds), "folds_expected": r.folds_expected, "seeds": r.seeds, "runs": r.runs}
    for a in board.aus:
        rec[f"AU{a}"], rec[f"AU{a}_sd"] = _round(r.f1.get(a)), _round(r.f1_sd.get(a))
    rec.update({"avg": _round(r.avg), "avg_sd": _round(r.avg_sd), "accuracy": _round(r.accuracy),
                "accuracy_sd": _round(r.accuracy_sd),
                "best": sorted(r.best, key=board.columns.index), "notes": list(r.flags), "citation": r.citation})
    return rec


def to_csv(boards: Sequence[Leaderboard]) -> str:
    """Values to 4 decimals; lists joined with ';', loss options as JSON, missing values empty."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_csv_columns(boards), lineterminator="\n")
    writer.writeheader()
    for board in boards:
        for r in board.rows:
            rec = _record(board, r)
            for k in ("folds", "best", "notes"):
                rec[k] = ";".join(map(str, rec[k]))
            if rec["loss_options"] is not None:
                rec["loss_options"] = json.dumps(rec["loss_options"], sort_keys=True)
            writer.writerow({k: "" if v is None else v for k, v in rec.items()})
    return buf.getvalue()


def to_json(boards: Sequence[Leaderboard]) -> str:
    """Values to 4 decimals; per-AU values as lists in the order of the board's `aus`."""
    out = []
    for board in boards:
        rows = []
        for r in board.rows:
            rec = _record(board, r)
            rec["f1"] = [rec.pop(f"AU{a}") for a in board.aus]
            rec["f1_sd"] = [rec.pop(f"AU{a}_sd") for a in board.aus]
            rows.append(rec)
        out.append({"dataset": board.dataset, "protocol": board.protocol, "protocol_hash": board.protocol_hash,
                    "aus": list(board.aus), "notes": board.notes, "rows": rows})
    return json.dumps({"legend": LEGEND, "boards": out}, indent=2, ensure_ascii=False)


def to_markdown(boards: Sequence[Leaderboard]) -> str:
    blocks = []
    for board in boards:
        cites = _citations(board)
        head = ["#", "Kind", "Method", "Setup", *board.columns, "Folds", "Notes"]
        lines = [f"### {_title(board)}", "", "| " + " | ".join(head) + " |",
                 "|" + "|".join("---:" if h in board.columns or h in ("#", "Folds") else "---" for h in head) + "|"]
        for r in board.rows:
            cells = [_md_escape(x) for x in (str(r.rank), r.kind, r.method, r.setup)]
            for col in board.columns:
                text = _pm(r.avg, r.avg_sd) if col == "Avg" else _fmt(r.value(col))
                cells.append(f"**{text}**" if col in r.best else text)
            cells += [_folds_cell(r), _md_escape(_notes_cell(r, cites))]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", LEGEND]
        lines += board.notes
        lines += [f"[{n}] {_md_escape(text)}" for text, n in cites.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "|": r"\textbar{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text).replace("±", r"$\pm$").replace(MISSING, "--")


def to_latex(boards: Sequence[Leaderboard]) -> str:
    """A booktabs tabular per board; measured and published separated by a midrule."""
    blocks = []
    for board in boards:
        cites = _citations(board)
        spec = "rlll" + "r" * len(board.columns) + "rl"
        lines = [f"% {_title(board)}", f"% {LEGEND}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                 " & ".join(["\\#", "Kind", "Method", "Setup", *board.columns, "Folds", "Notes"]) + r" \\", r"\midrule"]
        for i, kind in enumerate(KINDS):
            rows = board.of_kind(kind)
            if i and rows and board.of_kind(KINDS[0]):
                lines.append(r"\midrule")
            for r in rows:
                cite = f"~[{cites[r.citation]}]" if r.citation else ""
                cells = [str(r.rank), r.kind, _tex(r.method) + cite, _tex(r.setup)]
                for col in board.columns:
                    text = _tex(_pm(r.avg, r.avg_sd) if col == "Avg" else _fmt(r.value(col)))
                    cells.append(rf"\textbf{{{text}}}" if col in r.best else text)
                cells += [_folds_cell(r), _tex("; ".join(r.flags))]
                lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [f"% {line}" for line in board.notes]
        lines += [f"% [{n}] {text}" for text, n in cites.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


RENDERERS = {"table": to_text, "csv": to_csv, "md": to_markdown, "latex": to_latex, "json": to_json}


def render(boards: Sequence[Leaderboard], fmt: str) -> str:
    """Text of `boards` in one of FORMATS."""
    if fmt not in RENDERERS:
        raise ConfigError(f"unknown leaderboard format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return RENDERERS[fmt](boards)
