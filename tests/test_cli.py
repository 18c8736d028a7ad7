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


def _commands():
    """(argv, click command) of every command and subcommand in COMMANDS."""
    import importlib

    import click

    def walk(cmd, argv):
        yield argv, cmd
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, argv + [name])

    for name, (module, _) in sorted(COMMANDS.items()):
        yield from walk(importlib.import_module(f"austack.cli.{module}").cli, [name])


@pytest.mark.parametrize("argv", [[]] + [argv for argv, _ in _commands()], ids=" ".join)
def test_every_help_fits_80_columns(argv):
    res = CliRunner().invoke(cli, [*argv, "--help"], terminal_width=80)
    assert res.exit_code == 0, res.output
    wide = [line for line in res.output.splitlines() if len(line) > 80]
    assert not wide, f"austack {' '.join(argv)} --help has lines over 80 columns:\n" + "\n".join(wide)


@pytest.mark.parametrize("argv,cmd", list(_commands()), ids=lambda x: " ".join(x) if isinstance(x, list) else "")
def test_every_default_is_shown(argv, cmd):
    """An option that has a default shows it (click's show_default); options without one (None,
    or a flag that is off) have nothing to show."""
    import click
    from click.core import UNSET

    hidden = [p.opts[0] for p in cmd.params
              if isinstance(p, click.Option) and not p.show_default and p.name not in ("help", "version")
              and p.default not in (None, UNSET, False, ())]
    assert not hidden, f"austack {' '.join(argv)}: defaults not shown for {hidden}"


def test_a_backbone_suggestion_names_each_model_once():
    from austack.errors import UnknownNameError
    from austack.models.backbones import build_backbone

    with pytest.raises(UnknownNameError) as err:
        build_backbone("resnet19")
    hint = str(err.value).split("did you mean ")[1].split("?")[0].split(", ")
    assert "'resnet18'" in hint and len(hint) == len(set(hint))


@pytest.mark.parametrize("fmt", ["bibtex", "text"])
@pytest.mark.parametrize("name", ["bp4d", "disfa", "gft", "affwild2", "bp4d+"])
def test_cite_fits_80_columns_and_keeps_every_word(run, name, fmt):
    from austack.cite import citations, format_citations

    r = run("cite", name, "--format", fmt)
    assert r.exit_code == 0, r.output
    assert max(map(len, r.output.splitlines())) <= 80
    assert r.output.split() == format_citations(citations(name), fmt).split()
