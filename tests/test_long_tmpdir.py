"""Tests pass where the temporary folder's path is long (120 characters): paths in the CLI's
output must not wrap what they assert on, and DataLoader workers must not hang on a socket
path too long to bind. Runs a few tests in a child pytest whose TMPDIR is that long."""
from __future__ import annotations

import os
import shutil
import tempfile
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI_TESTS = ["tests/test_store_cli.py", "tests/test_inspect.py", "tests/test_cli_leaderboard.py",
             "tests/test_data.py::test_loader_is_seeded_and_workers_open_their_own_handle"]


def long_dir(base: Path, length: int = 120) -> Path:
    path = base / "t"
    path = Path(str(path) + "x" * (length - len(str(path))))
    path.mkdir(parents=True)
    assert len(str(path)) == length
    return path


def test_cli_tests_pass_with_a_120_character_tmpdir():
    base = Path(os.path.realpath("/tmp")) / f"austack-long-{os.getpid()}"
    tmp = long_dir(base)
    env = {**os.environ, "TMPDIR": str(tmp), "COLUMNS": "80"}
    env.pop("PYTEST_XDIST_WORKER", None)
    try:
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                              "-x", *CLI_TESTS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert " passed" in res.stdout


def test_the_socket_folder_moves_only_when_tmpdir_is_too_long(monkeypatch, tmp_path):
    from multiprocessing import process

    from austack.data.socket_dir import SOCKET_PATH_MAX, short_socket_dir

    config = dict(process.current_process()._config)
    monkeypatch.setattr(process.current_process(), "_config", config)
    short = Path(tempfile.mkdtemp(dir="/tmp")) / "pymp-short"   # tmp_path itself may be long (xdist)
    config["tempdir"] = str(short)
    assert short_socket_dir() is None and config["tempdir"] == str(short)
    shutil.rmtree(short.parent)
    config["tempdir"] = str(long_dir(tmp_path, max(120, len(str(tmp_path)) + 10)) / "pymp-long")
    folder = short_socket_dir()
    assert folder is not None and config["tempdir"] == folder and Path(folder).is_dir()
    assert len(folder) + len("/listener-12345678") < SOCKET_PATH_MAX
    shutil.rmtree(folder)
