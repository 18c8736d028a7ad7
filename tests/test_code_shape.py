"""The shape the code promises: short functions, no import circles, folders in one order.

Every import counts, wherever it is written: at module level, inside a function (deferred
on purpose, but still a dependency) and under `TYPE_CHECKING`. `ast.walk` finds them all.
"""
from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 80

# The folders (and loose modules) of `austack/`, bottom first. A module may import its own
# folder and any folder on a lower line, never one on its own line or above. The root
# package `austack/__init__.py` is the public face and is left out.
LAYERS = (
    ("errors",),
    ("_resources", "registry", "fileio", "settings", "labels", "facs", "records", "transfer", "tables", "devices",
     "metrics", "progress", "eta", "lock", "example_video"),
    ("protocols", "faces", "runs", "losses", "published_provenance"),
    ("datasets", "published", "cite"),
    ("store", "inspect", "synth", "inference", "results"),
    ("prepare", "data", "export", "scoring"),
    ("models",),
    ("engine",),
    ("studies", "demo"),
    ("docs_figures",),
)
TEST_LIKE = re.compile(r"^(test_.*|.*_test|conftest)$")


def _sources(root: Path, *folders: str):
    for folder in folders:
        yield from sorted((root / folder).rglob("*.py"))


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every austack module or name `path` imports, at any depth of its syntax tree."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("austack")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("austack"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the library modules it imports (a package's `__init__` importing its own
    submodules is how packages work, not an edge)."""
    modules = {_module_name(p, root): p for p in _sources(root, "austack")}
    graph = {m: {i for i in _imports(p, m) if i in modules and i not in (m, "austack")}
             for m, p in modules.items()}
    return {m: {i for i in deps if not (i.startswith(m + ".") and modules[m].name == "__init__.py")}
            for m, deps in graph.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(graph[m]):
            visit(d)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    return cycles


def _folder(module: str) -> str:
    """The folder or loose module of `austack/` a module is in ("" for the root package)."""
    return module.split(".")[1] if "." in module else ""


def layer_breaks(graph: dict[str, set[str]]) -> list[str]:
    """Imports that point to a folder on the same line of LAYERS or above, or to a folder
    missing from the table."""
    rank = {name: i for i, line in enumerate(LAYERS) for name in line}
    out = []
    for m, deps in sorted(graph.items()):
        for d in sorted(deps):
            a, b = _folder(m), _folder(d)
            if a == b or not a:
                continue
            if a not in rank or b not in rank:
                out.append(f"{m} -> {d}: add {a if a not in rank else b} to LAYERS")
            elif rank[b] >= rank[a]:
                out.append(f"{m} -> {d}: {a} (line {rank[a]}) may not import {b} (line {rank[b]})")
    return out


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in _sources(ROOT, "austack", "cli"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_no_import_circle_in_the_library():
    cycles = import_circles(import_graph(ROOT))
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_folders_import_only_downwards():
    breaks = layer_breaks(import_graph(ROOT))
    assert not breaks, "imports against the folder order:\n" + "\n".join(breaks)


def missing_imports(root: Path) -> list[str]:
    """Imports, at any depth, of austack modules that do not exist: a deferred import left
    pointing at a module's old home fails only when its function first runs."""
    modules = {_module_name(p, root) for p in _sources(root, "austack")}
    modules |= {"austack.cli"} | {f"austack.cli.{p.stem}" for p in (root / "cli").glob("*.py")}
    out = []
    for path in _sources(root, "austack", "cli"):
        m = _module_name(path, root) if path.is_relative_to(root / "austack") else f"austack.cli.{path.stem}"
        package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                names = [base]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            out += [f"{path.relative_to(root)}:{node.lineno} imports {n}" for n in names
                    if n.startswith("austack") and n not in modules and not n.startswith("austack._resources")]
    return out


def test_every_import_names_a_module_that_exists():
    missing = missing_imports(ROOT)
    assert not missing, "\n".join(missing)


def test_results_and_inference_import_nothing_from_the_engine():
    graph = import_graph(ROOT)
    up = [f"{m} -> {d}" for m, deps in graph.items() if _folder(m) in ("results", "inference")
          for d in deps if _folder(d) == "engine"]
    assert not up, "\n".join(up)


def test_no_product_module_is_named_like_a_test():
    named = [str(p.relative_to(ROOT)) for p in _sources(ROOT, "austack", "cli") if TEST_LIKE.match(p.stem)]
    assert not named, f"product modules named like tests (pytest would collect them): {named}"


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    return tmp_path


def test_the_checks_see_a_planted_function_level_circle(tmp_path):
    """A circle made only of deferred and TYPE_CHECKING imports, in a copy of the library."""
    shutil.copytree(ROOT / "austack", tmp_path / "austack", ignore=shutil.ignore_patterns("__pycache__"))
    assert not import_circles(import_graph(tmp_path))
    _plant(tmp_path, {
        "austack/runs/planted.py": "def f():\n    from ..engine import planted_too\n",
        "austack/engine/planted_too.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                          "    from ..runs import planted\n"),
    })
    graph = import_graph(tmp_path)
    cycles = import_circles(graph)
    assert ["austack.engine.planted_too", "austack.runs.planted", "austack.engine.planted_too"] in cycles
    assert any(b.startswith("austack.runs.planted -> austack.engine.planted_too") for b in layer_breaks(graph))


def test_the_checks_see_a_planted_upward_import_and_a_test_named_module(tmp_path):
    root = _plant(tmp_path, {
        "austack/__init__.py": "",
        "austack/errors.py": "",
        "austack/results/__init__.py": "",
        "austack/results/board.py": "def f():\n    import austack.engine.bench\n",
        "austack/engine/__init__.py": "",
        "austack/engine/bench.py": "from ..errors import *\n",
    })
    graph = import_graph(root)
    assert not import_circles(graph)
    assert layer_breaks(graph) == ["austack.results.board -> austack.engine.bench: results (line 4) may not "
                                   "import engine (line 7)"]
    assert TEST_LIKE.match("noisy_test") and not TEST_LIKE.match("testing_time")
