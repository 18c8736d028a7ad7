"""How each published number was made: `baselines/published/provenance.yaml`, typed and checked.

Per source (the paper or code that produced a number) the file states, with evidence, which
split selected the checkpoint, the threshold rule, DISFA's camera, the fold lists, the starting
weights and what a printed "±" is. "unknown" is a value, never a gap: a row whose source the
file does not describe gets the file's `default` facts, which say unknown and why.

`mark(p)` is the short code a leaderboard prints per row (legend: `MARK_LEGEND`); the same
letters mark austack's own rows (`austack.results.setup_code`), so the two read alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ._resources import baselines_dir
from .errors import ResultsError

FIELDS = ("selection", "threshold", "camera", "split", "init", "plus_minus")
UNKNOWN = "unknown"

# One letter per fact, in this order: selection, threshold, init.
SELECTION_CODE = {"test": "T", "validation": "V", UNKNOWN: "?"}
THRESHOLD_CODE = {"fixed 0.5": "5", "tuned on test": "t", "tuned on validation": "v", UNKNOWN: "?"}
MARK_LEGEND = ("How: 1st letter selection (T test fold, V validation, ? unknown); 2nd threshold "
               "(5 fixed 0.5, v tuned on validation, t tuned on test, ? unknown); 3rd init (i ImageNet "
               "or other pre-training, r random, ? unknown). L/R: DISFA camera.")


@dataclass(frozen=True)
class Fact:
    value: str
    evidence: str

    def to_dict(self) -> dict[str, str]:
        return {"value": self.value, "evidence": self.evidence}


@dataclass(frozen=True)
class Provenance:
    """The facts of one published row; each is a `Fact` (value + where it shows)."""

    source: str                 # the key the facts came from, or "default"
    selection: Fact
    threshold: Fact
    camera: Fact
    split: Fact
    init: Fact
    plus_minus: Fact

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, **{f: getattr(self, f).to_dict() for f in FIELDS}}


def _fact(raw: Any, where: str, field: str, allowed: list | None, path: Path) -> Fact:
    if not isinstance(raw, dict) or set(raw) != {"value", "evidence"}:
        raise ResultsError(f"{path.name}: {where}.{field} must be {{value, evidence}}, got {raw!r}", path=path)
    value, evidence = str(raw["value"]).strip(), str(raw["evidence"]).strip()
    if allowed is not None and value not in allowed:
        raise ResultsError(f"{path.name}: {where}.{field} = {value!r}; expected one of {', '.join(allowed)}",
                           path=path)
    if not value or not evidence:
        raise ResultsError(f"{path.name}: {where}.{field} needs a value and its evidence ('unknown' is a value)",
                           path=path)
    return Fact(value, evidence)


def _facts(raw: Any, where: str, dataset: str, allowed: dict, path: Path) -> dict[str, Fact]:
    """The facts of one block for one dataset (a `by_dataset` entry wins over its `default`)."""
    if not isinstance(raw, dict):
        raise ResultsError(f"{path.name}: {where} must be a mapping of facts", path=path)
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ResultsError(f"{path.name}: {where} has unknown field(s) {', '.join(unknown)}; known: "
                           f"{', '.join(FIELDS)}", path=path)
    out = {}
    for name, spec in raw.items():
        if isinstance(spec, dict) and "by_dataset" in spec:
            spec = (spec["by_dataset"] or {}).get(dataset, spec.get("default"))
            if spec is None:
                continue
        out[name] = _fact(spec, where, name, allowed.get(name), path)
    return out


def provenance_path() -> Path:
    return baselines_dir() / "published" / "provenance.yaml"


@cache
def _load(path: str) -> dict:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ResultsError(f"cannot read {p}: {e}", path=p) from None
    for key in ("fields", "default", "sources"):
        if key not in (data or {}):
            raise ResultsError(f"{p.name}: missing top-level key {key!r}", path=p)
    return data


def provenance_for(ref: str, dataset: str, table: str, method: str, has_sd: bool,
                   path: str | Path | None = None) -> Provenance:
    """The facts of the row of `table` and `method` whose number came from source `ref`."""
    p = Path(path or provenance_path())
    data = _load(str(p))
    allowed = {k: v for k, v in data["fields"].items() if v}
    facts = _facts(data["default"], "default", dataset, allowed, p)
    missing = [f for f in FIELDS if f not in facts]
    if missing:
        raise ResultsError(f"{p.name}: default lacks {', '.join(missing)}; every field needs a default", path=p)
    source = "default"
    if ref in data["sources"]:
        facts.update(_facts(data["sources"][ref], f"sources.{ref}", dataset, allowed, p))
        source = ref
    for i, row in enumerate(data.get("rows") or []):
        if row.get("table") == table and row.get("method") == method:
            facts.update(_facts({k: v for k, v in row.items() if k not in ("table", "method")},
                                f"rows[{i}]", dataset, allowed, p))
    if not has_sd:   # the "±" fact speaks of a printed spread only
        facts["plus_minus"] = Fact("none", "no spread printed for this row")
    return Provenance(source, **facts)


def known_sources(path: str | Path | None = None) -> list[str]:
    return sorted(_load(str(Path(path or provenance_path())))["sources"])


def _init_code(init: str) -> str:
    if init == UNKNOWN:
        return "?"
    return "r" if init.lower().startswith("random") else "i"


def mark(p: Provenance) -> str:
    """Short code: selection, threshold, init letters, then the DISFA camera (L/R/?) if any."""
    code = SELECTION_CODE.get(p.selection.value, "?") + THRESHOLD_CODE.get(p.threshold.value, "?")
    code += _init_code(p.init.value)
    camera = {"left": "L", "right": "R", UNKNOWN: "?"}.get(p.camera.value, "")
    return code + camera
