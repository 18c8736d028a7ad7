"""Citations for a result: the dataset paper(s), the exact fold protocol, and austack.

A protocol is cited by name, version and content hash, so a paper can say precisely which split
its numbers used and a reader can check that their copy of the split is the same one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from . import __version__
from ._resources import protocols_dir
from .errors import ProtocolError
from .protocols import Protocol, load_protocol

FORMATS = ("bibtex", "text")


@dataclass(frozen=True)
class BibEntry:
    kind: str
    key: str
    fields: dict

    def bibtex(self) -> str:
        body = ",\n".join(f"  {k:<9} = {{{v}}}" for k, v in self.fields.items())
        return f"@{self.kind}{{{self.key},\n{body}\n}}"

    def text(self) -> str:
        f = {k: re.sub(r"[{}]", "", v).replace("\\'a", "á").replace("\\'o", "ó") for k, v in self.fields.items()}
        authors = f.get("author", "").split(" and ")
        who = ", ".join(authors[:-1]) + (" and " if len(authors) > 1 else "") + authors[-1]
        where = f.get("journal") or f.get("booktitle") or f.get("howpublished") or f.get("publisher", "")
        extra = ", ".join(x for x in (f.get("volume") and f"vol. {f['volume']}", f.get("number") and f"no. {f['number']}",
                                      f.get("pages") and f"pp. {f['pages'].replace('--', '-')}", f.get("note")) if x)
        version = f"version {f['version']}" if f.get("version") else ""
        tail = ", ".join(x for x in (where, extra, version, f.get("year", "")) if x)
        return f"{who}. \"{f.get('title', '')}\". {tail}."


def parse_bibtex(text: str) -> dict[str, BibEntry]:
    """A small parser for the flat, brace-delimited entries this project writes itself."""
    entries = {}
    for m in re.finditer(r"@(\w+)\{([^,]+),(.*?)\n\}", text, re.S):
        fields = {}
        for fm in re.finditer(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", m.group(3)):
            fields[fm.group(1).lower()] = " ".join(fm.group(2).split())
        entries[m.group(2).strip()] = BibEntry(m.group(1).lower(), m.group(2).strip(), fields)
    return entries


@cache
def dataset_bibliography() -> dict[str, BibEntry]:
    return parse_bibtex((protocols_dir() / "datasets.bib").read_text(encoding="utf-8"))


def protocol_entry(p: Protocol) -> BibEntry:
    origin = "split defined by austack" if p.defined_by == "austack" else "community split as distributed by austack"
    return BibEntry("misc", f"austack-{p.name}-v{p.version}".replace("+", "plus"), {
        "author": "{The austack developers}",
        "title": f"{p.title} (protocol {p.id})",
        "howpublished": f"austack fold protocol {p.id}, sha256 {p.full_hash}",
        "note": f"{origin}; {p.source}",
        "year": "2026",
    })


def austack_entry() -> BibEntry:
    return BibEntry("software", "austack", {
        "author": "{The austack developers}",
        "title": "austack: reproducible facial action unit detection",
        "version": __version__,
        "year": "2026",
    })


def citations(name: str) -> list[BibEntry]:
    """Entries to cite for a dataset or protocol name: dataset paper(s), protocol, austack."""
    p = load_protocol(name)
    bib = dataset_bibliography()
    missing = [k for k in p.cite if k not in bib]
    if missing:
        raise ProtocolError(f"{p.path}: cite key(s) {missing} not in datasets.bib", path=p.path)
    return [bib[k] for k in p.cite] + [protocol_entry(p), austack_entry()]


def format_citations(entries: list[BibEntry], fmt: str = "bibtex") -> str:
    if fmt == "bibtex":
        return "\n\n".join(e.bibtex() for e in entries)
    if fmt == "text":
        return "\n".join(f"[{i}] {e.text()}" for i, e in enumerate(entries, 1))
    raise ValueError(f"unknown citation format {fmt!r}; expected one of {', '.join(FORMATS)}")
