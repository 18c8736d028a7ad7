"""The published reference results (`baselines/published/`), typed and checked on load.

Each CSV holds one table of one paper, indexed by `tables.yaml`. Loading checks every value
(numbers in [0, 100], AU columns equal to the protocol's AUs, in order) and raises
`ResultsError` naming the file and line of anything malformed. A row whose printed average
disagrees with the mean of its per-AU values by more than rounding can explain is kept as
printed and flagged `avg_mismatch`: leaderboards show the flag, nobody "fixes" a paper.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ._resources import baselines_dir
from .errors import ResultsError
from .protocols import load_protocol
from .published_provenance import provenance_for


@dataclass(frozen=True)
class PublishedRow:
    table: str                      # "II", "VII", ...
    method: str
    venue: str
    dataset: str
    protocol: str                   # protocol name the numbers follow, e.g. "bp4d-3fold"
    kind: str                       # comparison | encoders | ablation | hyperparameters
    aus: tuple[int, ...]
    f1: tuple[float | None, ...]    # per AU, percent; None where the table has no per-AU values
    avg: float                      # mean F1 over AUs as printed, percent
    f1_sd: tuple[float | None, ...] = ()
    avg_sd: float | None = None
    accuracy: float | None = None
    extra: dict = field(default_factory=dict, hash=False, compare=False)  # loss, austack_loss, p1 ...
    flags: tuple[str, ...] = ()
    citation: str = ""              # the method's paper
    source: str = ""                # the paper whose table this is
    file: str = ""
    line: int = 0
    ref: str = ""                   # the references.yaml key of who made the number
    source_dataset: str = ""        # cross-dataset rows: the dataset that trained (`dataset`: the one scored)
    provenance: Any = field(default=None, hash=False, compare=False)   # published_provenance.Provenance

    @property
    def same_as(self) -> str:
        """"II AUNCE" where this row repeats a row of another table (shown with --all only)."""
        return self.extra.get("same_as", "")

    @property
    def label(self) -> str:
        """Method name plus whatever distinguishes rows of the same method (loss, model)."""
        loss = self.extra.get("loss")
        return f"{self.method} + {loss}" if loss else self.method


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ResultsError(f"{path.name}:{line}: column {column} is {text!r}, not a number", path=path) from None
    if not 0.0 <= v <= 100.0:
        raise ResultsError(f"{path.name}:{line}: column {column} = {v} is outside [0, 100]", path=path)
    return v


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def avg_tolerance(per_au_texts: list[str], avg_text: str) -> float:
    """Largest |mean(per-AU) - avg| that rounding of the printed values can explain."""
    au_half_step = max(0.5 * 10.0 ** -_decimals(t) for t in per_au_texts)
    return au_half_step + 0.5 * 10.0 ** -_decimals(avg_text) + 1e-9


def _load_table(entry: dict, folder: Path, source: dict, refs: dict) -> list[PublishedRow]:
    path = folder / entry["file"]
    try:
        with path.open(newline="", encoding="utf-8") as f:
            records = list(csv.DictReader(f))
            header = list(records[0].keys()) if records else []
        if any(None in r for r in records):
            raise ResultsError(f"{path.name}: a row has more fields than the header (unquoted comma?)", path=path)
    except OSError as e:
        raise ResultsError(f"cannot read published table {path}: {e}", path=path) from None
    for col in ("method", "venue", "Avg"):
        if col not in header:
            raise ResultsError(f"{path.name}: missing column {col!r} (columns: {', '.join(header)})", path=path)
    au_cols = [c for c in header if c.startswith("AU")]
    aus = tuple(int(c[2:]) for c in au_cols)
    proto = load_protocol(entry["protocol"])
    if aus and aus != proto.aus:
        raise ResultsError(f"{path.name}: AU columns {list(aus)} differ from {proto.id}'s {list(proto.aus)}", path=path)
    aus = aus or proto.aus
    other = [c for c in header if c not in au_cols and c not in ("method", "venue", "ref", "statistic", "Avg", "Accuracy")]

    rows: list[PublishedRow] = []
    for line, rec in enumerate(records, start=2):
        stat = rec.get("statistic") or "mean"
        if stat == "sd":  # the spread row belongs to the row above it
            if not rows or rows[-1].method != rec["method"]:
                raise ResultsError(f"{path.name}:{line}: sd row for {rec['method']!r} does not follow its mean row", path=path)
            rows[-1] = replace(rows[-1], f1_sd=tuple(_number(rec[c], path, line, c) for c in au_cols),
                               avg_sd=_number(rec["Avg"], path, line, "Avg"))
            continue
        if stat != "mean":
            raise ResultsError(f"{path.name}:{line}: statistic must be mean or sd, not {stat!r}", path=path)
        f1 = tuple(_number(rec[c], path, line, c) for c in au_cols) if au_cols else (None,) * len(aus)
        avg = _number(rec["Avg"], path, line, "Avg")
        flags = []
        if au_cols:
            mean = sum(f1) / len(f1)
            if abs(mean - avg) > avg_tolerance([rec[c] for c in au_cols], rec["Avg"]):
                flags.append(f"avg_mismatch: printed {avg:.1f}, per-AU mean {mean:.2f}")
        acc = _number(rec["Accuracy"], path, line, "Accuracy") if rec.get("Accuracy") else None
        method = rec["method"].strip()
        ref_key = rec.get("ref") or method
        if ref_key not in refs:
            raise ResultsError(f"{path.name}:{line}: no entry {ref_key!r} in references.yaml", path=path)
        rows.append(PublishedRow(
            table=entry["table"], method=method, venue=rec["venue"], dataset=entry["dataset"],
            protocol=entry["protocol"], kind=entry["kind"], aus=aus, f1=f1, avg=avg, accuracy=acc,
            extra={c: rec[c] for c in other if rec.get(c, "") != ""}, flags=tuple(flags),
            citation=refs.get(ref_key, ""), source=source["citation"], file=str(path), line=line, ref=ref_key))
    return rows


@cache
def _load_all(folder: str) -> tuple[PublishedRow, ...]:
    root = Path(folder)
    index = yaml.safe_load((root / "tables.yaml").read_text(encoding="utf-8"))
    refs = yaml.safe_load((root / "references.yaml").read_text(encoding="utf-8"))
    out: list[PublishedRow] = []
    for entry in index["tables"]:
        out += _load_table(entry, root, index["source"], refs)
    out = [replace(r, provenance=provenance_for(r.ref, r.dataset, r.table, r.method, r.avg_sd is not None,
                                                 root / "provenance.yaml")) for r in out]
    _check_same_as(out)
    return tuple(out)


def _check_same_as(rows: list[PublishedRow]) -> None:
    """A `same_as` names an existing row ("TABLE label") with the same Avg: a repeat, not a guess."""
    by = {f"{r.table} {r.label}": r for r in rows}
    for r in rows:
        if not r.same_as:
            continue
        other = by.get(r.same_as)
        if other is None or other.avg != r.avg:
            raise ResultsError(f"{Path(r.file).name}:{r.line}: same_as {r.same_as!r} names no row with Avg "
                               f"{r.avg}; give 'TABLE method' of the row it repeats", path=r.file)


def load_published(dataset: str | None = None, *, kind: str | None = None, table: str | None = None,
                   folder: str | Path | None = None) -> list[PublishedRow]:
    """Published rows, optionally only one dataset's, one kind's or one table's."""
    rows = _load_all(str(folder or baselines_dir() / "published"))
    return [r for r in rows
            if (dataset is None or r.dataset == dataset) and (kind is None or r.kind == kind)
            and (table is None or r.table == table)]


CROSS_FILE = "cross_dataset.yaml"
_CROSS_KEYS = ("method", "source", "target", "aus", "avg", "reported_by", "target_split", "checkpoint",
               "protocol_shown_by")


@cache
def _load_cross(path: str) -> tuple[PublishedRow, ...]:
    from .protocols import shared_aus

    file = Path(path)
    try:
        entries = (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).get("rows") or []
    except (OSError, yaml.YAMLError) as e:
        raise ResultsError(f"cannot read published cross-dataset numbers {file}: {e}", path=file) from None
    out = []
    for i, e in enumerate(entries, start=1):
        where = f"{file.name}: entry {i}"
        missing = [k for k in _CROSS_KEYS if k not in (e or {})]
        if missing:
            raise ResultsError(f"{where} lacks {', '.join(missing)}", path=file)
        source, target = load_protocol(str(e["source"])), load_protocol(str(e["target"]))
        aus = tuple(int(a) for a in e["aus"])
        if set(aus) - set(shared_aus(source.aus, target.aus)):
            raise ResultsError(f"{where}: AUs {list(aus)} are not all labelled by both {source.dataset} and "
                               f"{target.dataset}", path=file)
        avg = _number(str(e["avg"]), file, i, "avg")
        setup = f"as reported by {e['reported_by']}; target: {e['target_split']}; checkpoint: {e['checkpoint']}"
        out.append(PublishedRow(
            table="", method=str(e["method"]), venue="", dataset=target.dataset, protocol=target.name,
            kind="cross-dataset", aus=aus, f1=(None,) * len(aus), avg=avg,
            extra={"setup": setup, **{k: str(e[k]) for k in _CROSS_KEYS[5:]}},
            source=f"as reported by {e['reported_by']}", file=str(file), line=i, source_dataset=source.dataset))
    return tuple(out)


def load_cross_published(folder: str | Path | None = None) -> list[PublishedRow]:
    """Published cross-dataset numbers (`baselines/published/cross_dataset.yaml`): rows whose
    `source_dataset` trained and whose `dataset` was scored, over the AUs both label."""
    return list(_load_cross(str(Path(folder or baselines_dir() / "published") / CROSS_FILE)))
