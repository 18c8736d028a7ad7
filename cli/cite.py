"""`austack cite NAME`: what to cite for a dataset and its exact fold protocol."""
from __future__ import annotations

import re
import textwrap

import click

from austack.cite import FORMATS, citations, format_citations

WIDTH = 80
_FIELD = re.compile(r"^(\s*\w+\s*=\s*\{)")   # "  author    = {": continuation lines align after it


def _wrap(text: str, fmt: str) -> str:
    """Lines within 80 columns; words (URLs, hashes) are never split. BibTeX field values may
    span lines (whitespace inside braces is one space to BibTeX), references hang-indent."""
    out = []
    for line in text.splitlines():
        if len(line) <= WIDTH:
            out.append(line)
            continue
        field = _FIELD.match(line) if fmt == "bibtex" else None
        lines: list[str] = []
        for indent in ([" " * len(field.group(1))] if field else []) + ["    "]:   # aligned, else shallow
            lines = textwrap.wrap(line, WIDTH, subsequent_indent=indent, break_long_words=False,
                                  break_on_hyphens=False)
            if max(map(len, lines)) <= WIDTH:
                break
        out += lines
    return "\n".join(out)


@click.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="bibtex", show_default=True,
              help="BibTeX entries or plain-text references.")
def cli(name, fmt):
    """Cite the dataset paper(s), the fold protocol (name, version, hash) and austack.

    NAME is a dataset (bp4d), a protocol name (bp4d-3fold) or an id (bp4d-3fold@v1).
    """
    click.echo(_wrap(format_citations(citations(name), fmt), fmt))
