"""`--reader-opt KEY=VALUE`: a reader's own options from the command line, e.g. GFT's layout
override `--reader-opt layout=gft-layout.yaml` (docs/datasets.md). The reader checks the names
and values, as it does for `create_reader(..., **options)`."""
from __future__ import annotations

import click


def _parse(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE such as layout=gft-layout.yaml, got {item!r}")
        out[key.strip()] = value.strip()
    return out


reader_option = click.option(
    "--reader-opt", "reader_options", multiple=True, metavar="KEY=VALUE", callback=_parse,
    help="A reader option, repeatable, e.g. GFT's layout override: --reader-opt layout=FILE.yaml "
         "(docs/datasets.md).")
