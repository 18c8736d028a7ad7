"""CLI tests pass where the temporary folder's path is long (120 characters): paths in their
output must not wrap what they assert on. Runs a few of them in a child pytest whose TMPDIR
is that long."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI_TESTS = ["tests/test_store_cli.py", "tests/test_inspect.py", "tests/test_cli_leaderboard.py"]


def long_dir(base: Path, length: int = 120) -> Path:
    path = base / "t"
    path = Path(str(path) + "x" * (length - len(str(path))))
    path.mkdir(parents=True)
    assert len(str(path)) == length
    return path


def test_cli_tests_pass_with_a_120_character_tmpdir(tmp_path_factory):
    base = Path(os.path.realpath("/tmp")) / f"austack-long-{os.getpid()}"
    tmp = long_dir(base)
    env = {**os.environ, "TMPDIR": str(tmp), "COLUMNS": "80"}
    env.pop("PYTEST_XDIST_WORKER", None)
    try:
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                              "-x", *CLI_TESTS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert " passed" in res.stdout
