"""Leaderboards as files: csv, markdown, latex and json, every AU in its own column.

Each format is written from the `BoardRow` objects of `austack.results.board`, never from
another format's text, so all agree to their printed precision. These are the wide formats
(one column per AU); the terminal table is `austack.results.board_rich`.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Sequence

from ..published_provenance import MARK_LEGEND
from .board import KINDS, MEASURED, PUBLISHED, BoardRow, Leaderboard
from .setup_code import CODE_LEGEND

MISSING = "–"
LEGEND = ("F1 and accuracy in percent; Avg = mean F1 over AUs; ± = std over folds on measured rows, as printed "
          "on published rows (what it is: the row's provenance plus_minus); 95% CI = bootstrap over test subjects. "
          "Measured and published rows are ranked separately; a column's best value within each kind is bold when "
          "one row alone holds it. How the paper recipes differ from the published protocol, setting by setting: "
          "docs/protocol-fidelity.md. " + MARK_LEGEND + " " + CODE_LEGEND)


# ---- cells shared by every renderer ---------------------------------------------------------
def fmt(x: float | None, digits: int = 1) -> str:
    return MISSING if x is None else f"{x:.{digits}f}"


def plus_minus(x: float | None, sd: float | None) -> str:
    return fmt(x) if sd is None or x is None else f"{x:.1f} ± {sd:.1f}"


def ci_cell(r: BoardRow) -> str:
    if r.ci is None:
        return MISSING
    return f"{r.ci.avg[1]:.1f}–{r.ci.avg[2]:.1f}" + ("*" if r.ci.flag else "")


def folds_cell(r: BoardRow) -> str:
    if r.kind == PUBLISHED:
        return ""
    return f"{len(r.folds)}/{r.folds_expected}" if r.folds_expected else str(len(r.folds))


def seeds_cell(r: BoardRow) -> str:
    return "" if r.kind == PUBLISHED else str(r.seeds)


def notes_cell(r: BoardRow, citations: dict[str, int]) -> str:
    parts = list(r.flags)
    if r.citation:
        parts.append(f"[{citations[r.citation]}]")
    return "; ".join(parts)


def citations(board: Leaderboard) -> dict[str, int]:
    cites: dict[str, int] = {}
    for r in board.rows:
        if r.citation and r.citation not in cites:
            cites[r.citation] = len(cites) + 1
    return cites


def title(board: Leaderboard) -> str:
    proto = f"{board.protocol} (hash {board.protocol_hash})" if board.protocol else "no protocol file"
    return f"{board.heading}: {proto}"


def has_ci(board: Leaderboard) -> bool:
    """True when intervals were asked for (computed, or missing with a reason)."""
    return any(r.ci is not None or r.ci_missing for r in board.rows)


def wide_head(board: Leaderboard) -> list[str]:
    """The columns of the md and latex tables."""
    return ["#", "Kind", "Method", "Setup", "How", *board.columns, *(["95% CI"] if has_ci(board) else []),
            "Folds", "Seeds", "Notes"]


# ---- csv and json ---------------------------------------------------------------------------
def _csv_columns(boards: Sequence[Leaderboard]) -> list[str]:
    aus = sorted({a for b in boards for a in b.aus})
    au_cols = [c for a in aus for c in (f"AU{a}", f"AU{a}_sd")]
    return (["dataset", "source", "test_split", "synthetic", "protocol", "kind", "rank", "method", "setup", "how",
             *PROVENANCE_COLUMNS,
             "backbone", "loss",
             "loss_options", "pretrained", "epochs", "protocol_hash", "config_hash", "store_checksum",
             "folds", "folds_expected", "n_folds", "n_seeds", "seeds", "runs"]
            + au_cols + ["avg", "avg_sd", "avg_ci_low", "avg_ci_high", "accuracy", "accuracy_sd", "best", "notes",
                         "citation"])


# The provenance facts every row carries, flat (csv) and as {value, evidence} (json "provenance").
PROVENANCE_COLUMNS = ("selection", "threshold", "init", "camera", "split", "plus_minus", "training_noise",
                      "target", "same_as")


def _facts(r: BoardRow) -> dict[str, Any]:
    """The row's facts as plain values: published facts' values, measured facts as they are."""
    out = {}
    for k in PROVENANCE_COLUMNS:
        v = r.provenance.get(k)
        out[k] = v["value"] if isinstance(v, dict) else v
    if r.kind == MEASURED:
        out["camera"], out["split"] = None, r.recipe.get("protocol")
        out["plus_minus"] = "std over folds" if r.avg_sd is not None else "none"
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)   # percent: 4 decimals hide float noise, lose nothing


def _record(board: Leaderboard, r: BoardRow) -> dict[str, Any]:
    """One row as plain values: what csv and json write."""
    measured = r.kind == MEASURED
    rec = {"dataset": board.dataset, "source": board.source or None,
           "test_split": r.recipe.get("test_split") or None, "synthetic": board.synthetic,
           "protocol": r.recipe.get("protocol", board.protocol), "kind": r.kind, "rank": r.rank,
           "method": r.method, "setup": r.setup, "how": r.how, **_facts(r), "backbone": r.recipe.get("backbone"),
           "loss": r.recipe.get("loss"), "loss_options": r.recipe.get("loss_options"),
           "pretrained": r.recipe.get("pretrained"), "epochs": r.recipe.get("epochs"),
           "protocol_hash": r.recipe.get("protocol_hash"), "config_hash": r.config_hash or None,
           "store_checksum": r.store_checksum or None, "folds": list(r.folds),
           "folds_expected": r.folds_expected, "n_folds": len(r.folds) if measured else None,
           "n_seeds": r.seeds if measured else None, "seeds": r.seeds, "runs": r.runs}
    for a in board.aus:
        rec[f"AU{a}"], rec[f"AU{a}_sd"] = _round(r.f1.get(a)), _round(r.f1_sd.get(a))
    low, high = (None, None) if r.ci is None else (_round(r.ci.avg[1]), _round(r.ci.avg[2]))
    rec.update({"avg": _round(r.avg), "avg_sd": _round(r.avg_sd), "avg_ci_low": low, "avg_ci_high": high,
                "accuracy": _round(r.accuracy), "accuracy_sd": _round(r.accuracy_sd),
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
    """Values to 4 decimals; per-AU values as lists in the order of the board's `aus`; `ci` is
    the row's subject-bootstrap interval (None where it was not computed). Ends with a newline."""
    out = []
    for board in boards:
        rows = []
        for r in board.rows:
            rec = _record(board, r)
            rec["f1"] = [rec.pop(f"AU{a}") for a in board.aus]
            rec["f1_sd"] = [rec.pop(f"AU{a}_sd") for a in board.aus]
            rec["ci"] = None if r.ci is None else r.ci.to_dict(board.aus)
            rec["provenance"] = r.provenance
            rows.append(rec)
        out.append({"dataset": board.dataset, "source": board.source or None, "synthetic": board.synthetic,
                    "heading": board.heading,
                    "protocol": board.protocol, "protocol_hash": board.protocol_hash, "aus": list(board.aus),
                    "notes": board.notes, "rows": rows})
    return json.dumps({"legend": LEGEND, "boards": out}, indent=2, ensure_ascii=False) + "\n"


# ---- markdown and latex ---------------------------------------------------------------------
def _value_cells(board: Leaderboard, r: BoardRow, bold, escape=lambda s: s) -> list[str]:
    cells = []
    for col in board.columns:
        text = escape(plus_minus(r.avg, r.avg_sd) if col == "Avg" else fmt(r.value(col)))
        cells.append(bold(text) if col in r.best else text)
    if has_ci(board):
        cells.append(escape(ci_cell(r)))
    return cells + [folds_cell(r), seeds_cell(r)]


def to_markdown(boards: Sequence[Leaderboard]) -> str:
    blocks = []
    for board in boards:
        cites = citations(board)
        head = wide_head(board)
        lines = [f"### {title(board)}", "", "| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if h in ("Kind", "Method", "Setup", "How", "Notes") else "---:"
                                for h in head) + "|"]
        for r in board.rows:
            cells = [_md_escape(x) for x in (str(r.rank), r.kind, r.method, r.setup, r.how)]
            cells += _value_cells(board, r, lambda t: f"**{t}**")
            cells.append(_md_escape(notes_cell(r, cites)))
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


def tex(text: str) -> str:
    return ("".join(_LATEX_SPECIAL.get(c, c) for c in text).replace("±", r"$\pm$").replace(MISSING, "--"))


def to_latex(boards: Sequence[Leaderboard]) -> str:
    """A booktabs tabular per board; measured and published separated by a midrule."""
    blocks = []
    for board in boards:
        cites = citations(board)
        head = wide_head(board)
        spec = "".join("l" if h in ("Kind", "Method", "Setup", "How", "Notes") else "r" for h in head)
        lines = [f"% {title(board)}", f"% {LEGEND}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                 " & ".join(tex(h) for h in head) + r" \\", r"\midrule"]
        for i, kind in enumerate(KINDS):
            rows = board.of_kind(kind)
            if i and rows and board.of_kind(KINDS[0]):
                lines.append(r"\midrule")
            for r in rows:
                cite = f"~[{cites[r.citation]}]" if r.citation else ""
                cells = [str(r.rank), r.kind, tex(r.method) + cite, tex(r.setup), tex(r.how)]
                cells += _value_cells(board, r, lambda t: rf"\textbf{{{t}}}", tex)
                cells.append(tex("; ".join(r.flags)))
                lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [f"% {line}" for line in board.notes]
        lines += [f"% [{n}] {text}" for text, n in cites.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
