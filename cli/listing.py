"""`austack list KIND [PATTERN]`: registry queries, never hand-kept lists."""
from __future__ import annotations

import click


def _encoders(pattern):
    from austack.models import list_encoders
    return list_encoders(pattern)


def _losses(pattern):
    from austack.losses import list_losses
    return list_losses(pattern)


def _readers(pattern):
    from austack.datasets import list_readers
    return list_readers(pattern)


def _layouts(pattern):
    from austack.synth import list_layouts
    return list_layouts(pattern)


def _recipes(pattern):
    import fnmatch
    from austack.runs.recipes import list_recipes
    return [n for n in list_recipes() if fnmatch.fnmatchcase(n, pattern)]


def _protocols(pattern):
    import fnmatch
    from austack.protocols import list_protocols
    return [p.id for p in list_protocols() if fnmatch.fnmatchcase(p.id, pattern)]


KINDS = {"backbones": _encoders, "losses": _losses, "readers": _readers, "layouts": _layouts,
         "recipes": _recipes, "protocols": _protocols}


def _loss_lines(names: list[str]) -> list[str]:
    """Each loss with the options `--loss-opt KEY=VALUE` accepts, wrapped to 80 columns."""
    import textwrap

    from austack.losses import loss_options
    out = []
    for name in names:
        out.append(name)
        opts = ", ".join(o for o in loss_options(name) if o not in ("weights", "rates"))
        out += textwrap.wrap(f"options: {opts or 'none'}", 76, initial_indent="    ", subsequent_indent="      ")
    return out


def _recipe_lines(names: list[str]) -> list[str]:
    """Each recipe with the weights it starts from (`published` shown as its tag)."""
    from austack.runs.recipes import load_recipe
    from austack.errors import ConfigError
    from austack.models.pretrained import PUBLISHED, published_for

    out = []
    for name in names:
        r = load_recipe(name)
        spec = r.get("pretrained")
        if spec == PUBLISHED:
            try:
                spec = f"published: {published_for(r.get('backbone', '')).tag}"
            except ConfigError:
                spec = "published: none registered"
        out.append(f"{name:<22} {r.get('backbone', '?')} + {r.get('loss', '?')}")
        out.append(f"    weights: {spec or 'random initialisation'}")
    return out


@click.command(context_settings={"max_content_width": 80})
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("pattern", default="*")
@click.option("--options", "with_options", is_flag=True,
              help="With losses: each loss's options (for `austack bench --loss-opt KEY=VALUE`).")
def cli(kind, pattern, with_options):
    """List registered backbones, losses, readers, synthetic layouts, recipes or protocols.

    PATTERN is a shell-style wildcard, e.g. `austack list losses 'aunce*'`. For backbones,
    any timm model name that yields a feature map also works; the list shows those austack
    tests and documents.
    """
    names = KINDS[kind](pattern)
    if not names:
        raise click.ClickException(f"no {kind} match {pattern!r}")
    if kind == "recipes":
        names = _recipe_lines(names)
    click.echo("\n".join(_loss_lines(names) if with_options and kind == "losses" else names))
