"""The CLI surface: every command has --help, errors are one line and exit non-zero."""
import subprocess

import pytest
from click.testing import CliRunner

from austack.cli.main import COMMANDS, cli


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def test_root_help_lists_commands(run):
    r = run("--help")
    assert r.exit_code == 0 and "protocols" in r.output and "cite" in r.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(run, name):
    r = run(name, "--help")
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output


def test_protocols_list_and_show(run):
    r = run("protocols")
    assert r.exit_code == 0 and "bp4d-3fold@v1" in r.output and "37af7779e238" in r.output
    r = run("protocols", "show", "bp4d")
    assert r.exit_code == 0
    for text in ("AU24", "F001", "part3 (13)", "37af7779e238"):
        assert text in r.output


def test_cite(run):
    r = run("cite", "disfa")
    assert r.exit_code == 0 and "@article{mavadati2013disfa" in r.output and "disfa-3fold@v1" in r.output
    r = run("cite", "bp4d", "--format", "text")
    assert r.exit_code == 0 and r.output.startswith("[1] Xing Zhang")


@pytest.mark.parametrize("args", [("protocols", "show", "nope"), ("cite", "nope"),
                                  ("cite", "bp4d", "--format", "word")])
def test_bad_input_exits_2_without_traceback(run, args):
    r = run(*args)
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert sum(line.startswith("Error:") for line in r.output.splitlines()) == 1


def test_console_script_is_installed():
    out = subprocess.run(["austack", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "austack" in out.stdout


@pytest.mark.parametrize("kind,expected", [("readers", "bp4d+"), ("layouts", "affwild2"), ("losses", "aunce.paper"),
                                           ("backbones", "test_tiny"), ("recipes", "demo-wce"),
                                           ("protocols", "gft-official@v1")])
def test_list_queries_the_registries(run, kind, expected):
    r = run("list", kind)
    assert r.exit_code == 0 and expected in r.output.split()


def test_list_with_a_pattern_and_no_match(run):
    r = run("list", "losses", "aunce.*")
    assert r.exit_code == 0 and "wce" not in r.output.split() and "aunce.reference" in r.output
    r = run("list", "losses", "nothing*")
    assert r.exit_code == 1 and "no losses match" in r.output
