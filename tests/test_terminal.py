"""The terminal experience as a person sees it: `austack demo --quick` and a leaderboard in an
80x24 pseudo-terminal (no line wider than 80 columns, progress while training), the same in a
log, and the 12-AU tables of `inspect` and `info` at 80 columns."""
from __future__ import annotations

import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from austack.cli.main import cli

COLS, ROWS = 80, 24
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def screen_lines(raw: str) -> list[str]:
    """What the terminal shows, line by line: escape sequences dropped, cut at CR and LF."""
    return re.split(r"\r\n|\r|\n", ANSI.sub("", raw))


def in_pty(argv: list[str], timeout: float = 540) -> tuple[int, list[tuple[float, str]]]:
    """Run `argv` on an 80x24 pseudo-terminal; (exit code, [(seconds since start, text read)])."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    env.update(TERM="xterm-256color", PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[tuple[float, str]] = []
    try:
        while True:
            if time.monotonic() - t0 > timeout:
                proc.kill()
                pytest.fail(f"{' '.join(argv)} ran over {timeout} s")
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:        # EIO: the child closed the terminal
                    data = b""
                if not data:
                    break
                chunks.append((time.monotonic() - t0, data.decode("utf-8", "replace")))
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    return proc.wait(), chunks


def austack(*args: str) -> list[str]:
    return [sys.executable, "-m", "austack", *args]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`austack demo --quick` once per session, on an 80x24 terminal (about a minute on 2 cores)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    code, chunks = in_pty(austack("demo", "--quick", "--out", str(out), "--workers", "1"))
    text = "".join(c for _, c in chunks)
    assert code == 0, ANSI.sub("", text)[-3000:]
    return SimpleNamespace(out=out, chunks=chunks, text=text)


def test_demo_fits_80_columns(demo):
    wide = [line for line in screen_lines(demo.text) if len(line) > COLS]
    assert not wide, "lines over 80 columns:\n" + "\n".join(wide[:5])


def test_demo_shows_progress_while_training(demo):
    """Epoch lines and the step bar come while a bench stage runs, not after it."""
    def first(pattern: str) -> float:
        return next(t for t, c in demo.chunks if re.search(pattern, ANSI.sub("", c)))

    started, finished = first(r"\[3/5\] bench demo-wce \.\.\."), first(r"\[3/5\] bench demo-wce: done")
    epoch = first(r"fold 1 train epoch 1/1 +loss")
    bar = first(r"steps/s|img/s  loss")     # the step bar (the demo's own lines carry an ETA too)
    assert started <= bar <= finished and started <= epoch <= finished
    assert "F1" in demo.text and "[5/5] leaderboard: done" in demo.text


def test_demo_quick_marks_its_numbers(demo):
    plain = ANSI.sub("", demo.text)
    tail = plain[plain.index("[5/5] leaderboard"):]
    assert "only show that the pipeline runs" in tail and "(--quick: not a result)" in tail
    assert "bp4d layout, synthetic" in tail          # demo results never pass for BP4D's


def test_leaderboard_fits_80_columns(demo):
    db = str(demo.out / "results.sqlite")
    code, chunks = in_pty(austack("leaderboard", "--db", db, "--dataset", "bp4d", "--per-au", "--ci"), 120)
    text = "".join(c for _, c in chunks)
    lines = screen_lines(text)
    assert code == 0, "\n".join(lines)
    assert max(map(len, lines)) <= COLS and "…" not in text
    assert "bp4d layout, synthetic" in text and "95% CI" in text and "AU24" in text
    assert "bp4d: bp4d-3fold@v1" in text                # the published rows, on their own board


def test_demo_rerun_in_a_log_says_each_stage(demo):
    """Output to a pipe (a log): plain lines, one per stage, the quick mark at the end."""
    res = subprocess.run(austack("demo", "--quick", "--out", str(demo.out), "--workers", "1"),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "\x1b[" not in out
    for n, name in enumerate(("synth", "prepare", "bench demo-wce", "bench demo-aunce"), 1):
        assert f"[{n}/5] {name}: reused" in out
    assert out.rstrip().endswith("they are no result")
    assert max(map(len, out.splitlines())) <= COLS


# ---- fast checks --------------------------------------------------------------------------------
def test_bench_view_in_a_log_is_one_line_per_epoch():
    from rich.console import Console

    from austack.progress import BenchView

    buf = io.StringIO()
    console = Console(file=buf, width=COLS, force_terminal=False)
    with BenchView(console) as view:
        view.update(SimpleNamespace(kind="fold", fold=1, epochs=2))
        for epoch in (1, 2):
            for step in (1, 2, 3):
                view.update(SimpleNamespace(kind="step", fold=1, phase="train", epoch=epoch, epochs=2, step=step,
                                            steps=3, images_per_s=50.0, loss=0.5))
            view.update(SimpleNamespace(kind="epoch", fold=1, phase="train", epoch=epoch, epochs=2, loss=0.4,
                                        val_f1=0.3, images_per_s=48.0))
    lines = buf.getvalue().splitlines()
    assert lines == ["fold 1 train epoch 1/2  loss 0.4000  val F1 30.0  48 img/s",
                     "fold 1 train epoch 2/2  loss 0.4000  val F1 30.0  48 img/s"]


def test_inspect_shows_all_12_aus_at_80_columns(tmp_path):
    from austack.synth import synthesize

    synthesize(tmp_path / "raw", "affwild2", subjects=2, sessions=1, frames=4, size=96, seed=1)
    res = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["inspect", "affwild2", str(tmp_path / "raw")])
    assert res.exit_code == 0, res.output
    assert max(map(len, res.output.splitlines())) <= COLS and "…" not in res.output
    rates = res.output[res.output.index("Label rates"):res.output.index("Anomalies")]
    for au in (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26):     # one column or one row per AU
        assert re.search(rf"\bAU{au}\b", rates), f"AU{au} missing"
    assert len(re.findall(r"\b\d+\.\d\b", rates)) == 24


def test_info_groups_with_long_names_keep_every_au():
    from rich.console import Console

    from austack.cli.info import _groups

    aus = [1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26]
    groups = [SimpleNamespace(name=f"{i}-30-1280x720_right", units=1, frames=100, faces=100,
                              rates=[0.123 * (k % 8) for k in range(12)]) for i in range(3)]
    console = Console(file=io.StringIO(), width=COLS, record=True)
    for part in _groups("Subjects", "sessions", groups, aus, console):
        console.print(part)
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= COLS and "…" not in text
    headers = [line.split() for line in text.splitlines() if "sessions" in line]
    assert [int(x) for h in headers for x in h[2:]] == aus


def test_label_rates_turn_to_one_row_per_au_when_narrow():
    from rich.console import Console

    from austack.cli.inspect import _rates_table

    aus = [1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26]
    for width, rows in ((80, 12), (120, 1)):   # rows showing an occurrence rate
        console = Console(file=io.StringIO(), width=width, record=True)
        console.print(_rates_table(aus, [0.167] * 12, [0.5] * 12, console))
        text = console.export_text()
        assert max(map(len, text.splitlines())) <= width and "…" not in text
        assert len([line for line in text.splitlines() if "16.7" in line]) == rows
