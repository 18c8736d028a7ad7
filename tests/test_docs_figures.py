"""`python -m austack.docs_figures`: every README/docs figure has a command that makes it, the
listing and dry run work without running anything, and a run records versions beside each."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from austack import docs_figures as df
from austack import lock

from test_readme import check, simple_commands

ROOT = Path(__file__).resolve().parent.parent


def test_every_image_in_readme_and_docs_is_made_by_a_figure():
    made = {c for f in df.FIGURES for c in f.copies}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+\.(?:png|svg|jpg))\)", doc.read_text(encoding="utf-8")):
            path = (doc.parent / target).resolve().relative_to(ROOT).as_posix()
            assert path in made, f"{doc.name} shows {path}, which no docs_figures entry makes"


def test_each_figure_command_names_real_commands_and_options():
    for f in df.FIGURES:
        for cmd in f.commands:
            for words in simple_commands(cmd.replace("(", " ").replace(")", " ")):
                words = [w for w in words if not w.startswith("OMP_NUM_THREADS=")]
                if words[0] in ("cd", "cp", "head", "export", "mkdir"):
                    continue
                script = words[0] if words[0].startswith("tests/") else \
                    words[1] if words[0] == "python3" and words[1].startswith("tests/") else None
                if script is not None:                       # one of the repository's own scripts
                    assert (ROOT / script).is_file(), words
                    continue
                if words[:3] == ["python3", "-m", "pytest"]:
                    assert all((ROOT / w).is_file() for w in words if w.startswith("tests/")), words
                    continue
                check(words)


def test_listing_and_dry_run_run_nothing(capsys, tmp_path):
    assert df.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")] == \
        [f.name for f in df.FIGURES]
    assert df.main(["--dry-run", "--only", "predict", "--out", str(tmp_path)]) == 0
    script = capsys.readouterr().out
    assert "austack demo" in script and "austack predict" in script    # predict reads the demo's detector
    assert not any(tmp_path.iterdir())
    assert "noise-full" not in [f.name for f in df.by_name(None) if not f.long]
    with pytest.raises(SystemExit):
        df.by_name(["nosuch"])


def test_a_run_writes_output_and_versions_beside_each_figure(tmp_path, monkeypatch):
    figure = df.Figure("echo", "nowhere", ("echo made > \"$OUT/made.txt\"",), minutes=0)
    gpu = df.Figure("gpu", "nowhere", ("false",), minutes=0, needs="cuda")
    failing = df.Figure("bad", "nowhere", ("exit 3",), minutes=0)
    monkeypatch.setattr(df, "cuda_available", lambda: False)
    records = df.run([figure, gpu, failing], tmp_path, keep_going=True)
    assert [r["status"] for r in records] == ["ok", "skipped: needs cuda", "failed: exit 3 in `exit 3`"]
    assert (tmp_path / "echo" / "made.txt").read_text().strip() == "made"
    saved = json.loads((tmp_path / "echo" / "versions.json").read_text())
    assert set(saved["environment"]["versions"]) == set(lock.KEY_PACKAGES)
    assert saved["commands"] == list(figure.commands)
    assert len(json.loads((tmp_path / "figures.json").read_text())) == 3


def test_refuses_to_run_outside_the_lock(tmp_path, monkeypatch, capsys):
    other = tmp_path / "lock.txt"
    other.write_text("numpy==0.0.1\n")
    monkeypatch.setattr(df, "LOCK", other)
    assert df.main(["--only", "noise-quick", "--out", str(tmp_path / "out")]) == 1
    assert "numpy" in capsys.readouterr().err and not (tmp_path / "out").exists()
