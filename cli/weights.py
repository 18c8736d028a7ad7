"""`austack weights list|fetch|verify`: the published weights per backbone, in the Hugging Face cache."""
from __future__ import annotations

import json

import click

from austack.errors import ConfigError


def _tags(tags: tuple[str, ...]) -> list[tuple[str, str]]:
    """(backbone, tag) per argument: a backbone name stands for its published tag, a timm
    ARCH.TAG for itself (unknown ones fail here, in one line); none: every published tag."""
    from austack.models.pretrained import PUBLISHED_WEIGHTS, full_tag

    if not tags:
        return [(b, w.tag) for b, w in PUBLISHED_WEIGHTS.items()]
    return [(t, PUBLISHED_WEIGHTS[t].tag) if t in PUBLISHED_WEIGHTS else (t.partition(".")[0], full_tag(t))
            for t in tags]


def _rows(tags: tuple[str, ...]) -> list[dict]:
    from austack.models.pretrained import PUBLISHED_WEIGHTS, cached_file

    rows = []
    for backbone, tag in _tags(tags):
        pub = PUBLISHED_WEIGHTS.get(backbone)
        path = cached_file(tag)
        rows.append({"backbone": backbone, "tag": tag, "published": pub is not None and pub.tag == tag,
                     "cached": path is not None, "file": None if path is None else str(path),
                     "size": None if path is None else path.stat().st_size,
                     "source": None if pub is None else pub.source})
    return rows


@click.group(context_settings={"max_content_width": 80})
def cli():
    """Pretrained backbone weights: the tag each backbone's published rows used, in the
    Hugging Face cache (HF_HOME, or HF_HUB_CACHE) that `--pretrained TAG|published` reads.

    \b
    On a connected machine:  austack weights fetch   (every published tag)
    Then copy $HF_HOME to the offline machine and set HF_HOME (and
    HF_HUB_OFFLINE=1) there: docs/weights.md.
    """


@cli.command("list")
@click.argument("tags", nargs=-1, metavar="[TAG...]")
@click.option("--json", "as_json", is_flag=True, help="The cache folder and one object per tag.")
def list_cmd(tags, as_json):
    """Each registered backbone's published tag (or the TAGs given), and whether it is
    cached here. Never uses the network."""
    from austack.models.pretrained import hub_cache_dir

    rows = _rows(tags)
    if as_json:
        click.echo(json.dumps({"cache": str(hub_cache_dir()), "weights": rows}, indent=1))
        return
    click.echo(f"cache: {hub_cache_dir()}")
    for r in rows:
        state = f"cached, {r['size'] / 2**20:.0f} MiB" if r["cached"] else "not cached"
        click.echo(f"{r['backbone']}\n    {r['tag']}  ({state})")


@cli.command("fetch")
@click.argument("tags", nargs=-1, metavar="[TAG...]")
def fetch_cmd(tags):
    """Download TAGs (default: every published tag) into the cache; needs the network.

    A TAG is a timm pretrained tag ARCH.TAG (e.g. resnet50.tv_in1k) or a backbone name,
    which stands for its published tag.
    """
    from austack.models.pretrained import hub_file, resolve_weights

    for _, tag in _tags(tags):
        path = hub_file(tag, download=True)
        w = resolve_weights(str(path), tag)
        click.echo(f"{tag}: {path} ({w.size / 2**20:.0f} MiB, sha256 {w.sha256})")


@cli.command("verify")
@click.argument("tags", nargs=-1, metavar="[TAG...]")
@click.option("--json", "as_json", is_flag=True, help="The checks as JSON.")
def verify_cmd(tags, as_json):
    """Re-hash cached files (default: every published tag) against the hub's record of them.

    The cache stores each file under its sha256 (blobs/<sha256>); a file whose content no
    longer matches that name, or a registered sha256, fails. Exit 1 on any failure.
    """
    from austack.models.pretrained import verify_cached

    checks = [verify_cached(r["tag"]) for r in _rows(tags)]
    if as_json:
        click.echo(json.dumps(checks, indent=1))
    else:
        for c in checks:
            click.echo(f"{c['tag']}: {c['status']}" + (f" ({c['detail']})" if c["detail"] else ""))
    if any(c["status"] == "mismatch" for c in checks):
        raise ConfigError("some cached weights do not match their recorded sha256; delete them and "
                          "run `austack weights fetch` again")
