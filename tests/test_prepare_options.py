"""`PrepareOptions`, declared once: the CLI is generated from it, a library call gets the same
checks, and `open_executor` makes the executor and device choice before any work."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields

import pytest

from austack.errors import ConfigError
from austack.prepare import PrepareOptions, cli_fields
from austack.prepare.executors import InlineExecutor, open_executor
from cli.prepare import cli


def test_every_cli_field_is_one_prepare_option_with_its_default_and_help(tmp_path):
    params = {p.name: p for p in cli.params}
    given = cli.make_context("prepare", ["bp4d", str(tmp_path), str(tmp_path / "o.h5")]).params
    for f in cli_fields():
        assert given[f.name] == f.default and params[f.name].help == f.metadata["help"]
        assert f"--{(f.metadata['flag'] or f.name).replace('_', '-')}" in params[f.name].opts
    library_only = {f.name for f in fields(PrepareOptions)} - {f.name for f in cli_fields()}
    assert library_only == {"reader_options", "detect_max_side", "chunk_frames", "window", "running"}
    assert params["encoding"].opts == ["--store"]       # the flag keeps its name


@pytest.mark.parametrize("bad, match", [
    (dict(workers=0), "at least 1"),
    (dict(encoding="png"), "unknown encoding 'png'"),
    (dict(landmarks="openface"), "unknown landmark source"),
    (dict(box_enlarge=0.0), "box_enlarge must be positive"),
    (dict(virtual=True), "give --shards too"),
    (dict(window=0), "window must be at least 1"),
])
def test_a_bad_setting_is_a_config_error_from_the_library_too(bad, match):
    with pytest.raises(ConfigError, match=match):
        PrepareOptions(**bad)


def test_open_executor_chooses_once():
    with open_executor(PrepareOptions()) as pool:
        assert isinstance(pool.executor, InlineExecutor) and (pool.window, pool.running) == (2, None)
    with ThreadPoolExecutor(2) as own, open_executor(PrepareOptions(workers=3, window=5), own) as pool:
        assert pool.executor is own and (pool.window, pool.running) == (5, None)
    with pytest.raises(ConfigError, match="not both"):
        with open_executor(PrepareOptions(dask="local:1"), InlineExecutor()):
            pass
    with pytest.raises(ConfigError, match="drop --workers 2"):
        with open_executor(PrepareOptions(workers=2, device="cpu")):
            pass
