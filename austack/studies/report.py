"""What every study leaves in its output folder: tidy CSV files and a README.md that says
how it was made (commands, config hashes, machine, time) and what came out (a table)."""
from __future__ import annotations

import csv
import io
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..fileio import atomic_write_text


def write_csv(path: str | os.PathLike, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in columns})
    return atomic_write_text(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def machine() -> str:
    """One line: host OS, CPU count, Python, torch, numpy and OpenCV versions and the device torch
    would use (a figure's numbers depend on them)."""
    import cv2
    import numpy
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, Python "
            f"{sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__}, "
            f"opencv {cv2.__version__}, {gpu}")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_readme(out: Path, *, title: str, what: str, commands: Sequence[str], hashes: dict[str, str],
                 started: str, seconds: float, table: str, files: Sequence[str], notes: str = "") -> Path:
    """`<out>/README.md`: the study's record, rewritten whole on every run."""
    cmd = "\n".join(commands)
    hash_lines = "\n".join(f"- `{h}`: {label}" for label, h in hashes.items())
    file_lines = "\n".join(f"- `{f}`" for f in files)
    text = (f"# {title}\n\n{what}\n\n## Commands\n\n```bash\n{cmd}\n```\n\n"
            f"## Run\n\n- started {started}, took {seconds:.0f} s (this invocation; folds already "
            f"recorded were reused, not rerun)\n- machine: {machine()}\n\n"
            f"## Config hashes\n\n{hash_lines}\n\n## Results\n\n{table}\n\n"
            + (f"{notes}\n\n" if notes else "") + f"## Files\n\n{file_lines}\n")
    return atomic_write_text(out / "README.md", text)


class EngineLog:
    """The engine's own console output (resolved configs, per-epoch lines) goes to
    `<out>/engine.log`, so the terminal shows one line per run of the study; `threads` caps
    torch's CPU threads for the study (tiny encoders run faster on one thread than on cores
    that other processes share), restored on exit."""

    def __init__(self, out: Path, threads: int | None = None):
        self.path, self.threads = out / "engine.log", threads

    def __enter__(self):
        import torch
        from rich.console import Console

        self._fh = open(self.path, "a", encoding="utf-8")
        self._saved = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        return Console(file=self._fh, width=100, force_terminal=False)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self._saved)
        self._fh.close()


def fold_outcome(rows) -> str:
    """One phrase for the terminal: mean F1 of the finished folds and how many failed."""
    ok = [r for r in rows if r is not None and r.status == "ok"]
    failed = len(rows) - len(ok)
    mean = sum(r.f1_mean for r in ok) / len(ok) if ok else None
    text = f"F1 {100 * mean:.1f}, {len(ok)} fold(s)" if ok else "no fold finished"
    return text + (f", {failed} failed: engine.log" if failed else "")


def run_grid(cfgs, run, log, console, dask: str | None = None, threads: int | None = None):
    """Each config's outcome, in order: one after another through `run` (each as it ends), or,
    with `dask`, every fold of every config at once as tasks on that cluster (the engine's
    output to `log`, a line per task and a bar to `console`)."""
    if not dask:
        for cfg in cfgs:
            yield run(cfg, console=log)
        return
    from ..engine.distributed_tasks import run_tasks

    yield from run_tasks(cfgs, dask, console=console, log=log, threads=threads).outcomes
