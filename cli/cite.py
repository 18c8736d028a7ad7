"""`austack cite NAME`: what to cite for a dataset and its exact fold protocol."""
from __future__ import annotations

import click

from austack.cite import FORMATS, citations, format_citations


@click.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="bibtex", show_default=True,
              help="BibTeX entries or plain-text references.")
def cli(name, fmt):
    """Cite the dataset paper(s), the fold protocol (name, version, hash) and austack.

    NAME is a dataset (bp4d), a protocol name (bp4d-3fold) or an id (bp4d-3fold@v1).
    """
    click.echo(format_citations(citations(name), fmt))
