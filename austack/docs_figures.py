"""Regenerate every figure in README.md and docs/ under the reproduction lock, in one command.

    python -m austack.docs_figures --list            # each figure: where it appears, time, needs
    python -m austack.docs_figures --dry-run         # the shell commands, in order, not run
    python -m austack.docs_figures --out /tmp/figs   # run them all (hours on 2 CPU cores)
    python -m austack.docs_figures --only demo,predict --out /tmp/figs

Each figure's commands run from the repository root with `$OUT` set to `<out>/<name>`; their
output goes to `<out>/<name>/output.log` and `<out>/<name>/versions.json` records the package
versions (against constraints/reproduce.txt), the commands, the date, the machine's cores and
the time taken; a figure copied into docs/img gets its versions beside it
(`docs/img/NAME.png` -> `docs/img/NAME.versions.json`). `<out>/figures.json` lists them all.
The numbers in README and docs are then copied from those outputs by hand, with the command
and versions beside them. The environment must match the lock (`python -m austack.lock
--check`), else nothing runs: figures made with other versions do not reproduce the README's.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .lock import LOCK, ROOT, closure, differences, environment_report, read_lock

DETECTOR = "$OUT/../demo/demo-out/runs/bp4d-test_tiny-wce-*-seed0/fold1/detector.pt"


@dataclass(frozen=True)
class Figure:
    name: str
    appears: str                 # where the figure is printed: README section or docs file
    commands: tuple[str, ...]    # bash, run from the repository root with $OUT = <out>/<name>
    minutes: float               # measured on 2 CPU cores (or the GPU named in `needs`)
    needs: str = "cpu"           # "cpu" or "cuda"
    after: tuple[str, ...] = ()  # figures whose outputs this one reads
    copies: tuple[str, ...] = field(default=())   # files written into docs/ (versions go beside)

    @property
    def long(self) -> bool:
        return self.minutes > 10


FIGURES: tuple[Figure, ...] = (
    Figure("demo", "README: Two commands (the demo's table)",
           ("(cd \"$OUT\" && austack demo --out demo-out)",), minutes=3),
    Figure("predict", "README: Predict (the CSV rows)",
           ("cp \"$(python3 -m austack.example_video)\" \"$OUT/carphone.mp4\"",
            f"(cd \"$OUT\" && austack predict {DETECTOR} carphone.mp4 --out carphone.csv --upsample 1)",
            "head -4 \"$OUT/carphone.csv\""), minutes=0.5, after=("demo",)),
    Figure("noise-quick", "README: Studies; docs/studies.md (figure and table)",
           ("austack study noise --quick --out \"$OUT/study\" --figure docs/img/noise-quick.png",),
           minutes=1, copies=("docs/img/noise-quick.png",)),
    Figure("noise-full", "docs/studies.md (figure and table); README: Studies",
           ("austack study noise --out \"$OUT/study\" --threads 2 --figure docs/img/noise-full.png",),
           minutes=22, copies=("docs/img/noise-full.png",)),
    Figure("store-encoding", "docs/benchmarks.md: Store encoding",
           ("python3 tests/bench_store.py --frames 2000",), minutes=3),
    Figure("prepare-throughput", "docs/benchmarks.md: Prepare throughput",
           ("python3 tests/bench_prepare.py --frames 40",), minutes=2),
    Figure("augment-cpu", "docs/benchmarks.md: Two-view augmentation",
           ("python3 -m pytest -p no:cacheprovider tests/bench/test_bench_augment.py --benchmark-enable "
            "--benchmark-group-by=group",), minutes=3),
    Figure("loss", "docs/benchmarks.md: Loss (forward + backward)",
           ("OMP_NUM_THREADS=1 python3 -m pytest -p no:cacheprovider tests/test_bench_losses.py --benchmark-enable",
            "OMP_NUM_THREADS=1 python3 -m pytest -p no:cacheprovider tests/test_bench_losses.py -s -k loop"),
           minutes=2),
    Figure("train-step-cpu", "docs/benchmarks.md: Training step (CPU)",
           ("python3 -m pytest -p no:cacheprovider tests/bench/test_bench_train_step.py --benchmark-enable",),
           minutes=2),
    Figure("predict-speed", "docs/benchmarks.md: austack predict against the naive loop",
           ("python3 -m pytest -p no:cacheprovider tests/bench/test_bench_predict.py --benchmark-enable "
            "--benchmark-group-by=param:video --benchmark-columns=min,mean,max,rounds",), minutes=3),
    Figure("gpu-session", "README: On a GPU; docs/benchmarks.md: GPU",
           ("austack synth \"$OUT/raw\" --layout bp4d --subjects 24 --sessions 3 --frames 42 --seed 7",
            "austack prepare bp4d \"$OUT/raw\" \"$OUT/store.h5\"",
            "tests/bench/gpu_session.sh \"$OUT/store.h5\" \"$OUT/session\""), minutes=12, needs="cuda"),
)


def by_name(names: list[str] | None) -> list[Figure]:
    """The figures asked for (every one when None), with the ones they read from first."""
    known = {f.name: f for f in FIGURES}
    if names is None:
        return list(FIGURES)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = set(names)
    for n in names:
        wanted.update(known[n].after)
    return [f for f in FIGURES if f.name in wanted]


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def listing(figures: list[Figure]) -> list[str]:
    """One block per figure, each line under 80 columns."""
    lines = []
    for f in figures:
        extra = "; ".join(x for x in (f"needs {f.needs}" if f.needs != "cpu" else "",
                                      "long" if f.long else "",
                                      f"after {', '.join(f.after)}" if f.after else "") if x)
        lines.append(f"{f.name}: {f.appears}")
        lines.append(f"    about {f.minutes:g} min" + (f" ({extra})" if extra else ""))
    return lines


def script(figures: list[Figure], out: Path) -> list[str]:
    """The shell commands `run` would run, copy-pasteable, in order."""
    lines = []
    for f in figures:
        lines += [f"# {f.name}: {f.appears}", f"export OUT={out / f.name}; mkdir -p \"$OUT\""]
        lines += list(f.commands)
    return lines


def versions_record(f: Figure, seconds: float, status: str) -> dict:
    return {"figure": f.name, "appears": f.appears, "commands": list(f.commands), "status": status,
            "seconds": round(seconds, 1), "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(), "environment": environment_report()}


def run(figures: list[Figure], out: Path, *, keep_going: bool = False) -> list[dict]:
    """Run each figure's commands; write output.log and versions.json per figure and
    figures.json over all. A figure whose `needs` this machine lacks is skipped and said."""
    out.mkdir(parents=True, exist_ok=True)
    cuda = cuda_available()
    records = []
    for f in figures:
        folder = out / f.name
        folder.mkdir(parents=True, exist_ok=True)
        if f.needs == "cuda" and not cuda:
            print(f"{f.name}: skipped (needs a CUDA GPU)", flush=True)
            records.append(versions_record(f, 0.0, "skipped: needs cuda"))
            continue
        print(f"{f.name}: running (about {f.minutes:g} min); log in {folder / 'output.log'}", flush=True)
        t0, status = time.perf_counter(), "ok"
        with open(folder / "output.log", "w", encoding="utf-8") as log:
            for cmd in f.commands:
                log.write(f"$ {cmd}\n")
                log.flush()
                rc = subprocess.run(["bash", "-c", f"set -euo pipefail; {cmd}"], cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT, env={**os.environ, "OUT": str(folder)}).returncode
                if rc != 0:
                    status = f"failed: exit {rc} in `{cmd}`"
                    break
        record = versions_record(f, time.perf_counter() - t0, status)
        records.append(record)
        text = json.dumps(record, indent=2)
        (folder / "versions.json").write_text(text, encoding="utf-8")
        for copy in f.copies:
            target = ROOT / copy
            if target.exists():
                target.with_suffix(".versions.json").write_text(text, encoding="utf-8")
        print(f"{f.name}: {status} in {record['seconds']:.0f} s", flush=True)
        if status != "ok" and not keep_going:
            break
    (out / "figures.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m austack.docs_figures", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("figures-out"), help="folder for logs and outputs")
    ap.add_argument("--only", help="comma-separated figure names (with the ones they need)")
    ap.add_argument("--list", action="store_true", help="list the figures and stop")
    ap.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    ap.add_argument("--skip-long", action="store_true", help="leave out figures of more than 10 minutes")
    ap.add_argument("--keep-going", action="store_true", help="go on after a figure fails")
    ap.add_argument("--unlocked", action="store_true",
                    help="run although the environment differs from constraints/reproduce.txt")
    args = ap.parse_args(argv)
    figures = by_name(args.only.split(",") if args.only else None)
    if args.skip_long:
        figures = [f for f in figures if not f.long]
    if args.list:
        print("\n".join(listing(figures)))
        return 0
    out = args.out.expanduser().resolve()
    if args.dry_run:
        print("\n".join(script(figures, out)))
        return 0
    lock = read_lock(LOCK)
    moved = ", ".join(differences(closure(), lock)) if lock else "no lock file"
    if moved and not args.unlocked:
        print(f"this environment differs from {LOCK.name} ({moved}); install with "
              f"`python3 -m pip install -e '.[test]' -c constraints/reproduce.txt`, or pass --unlocked",
              file=sys.stderr)
        return 1
    if shutil.which("austack") is None:
        print("the austack command is not on PATH; install austack first", file=sys.stderr)
        return 1
    records = run(figures, out, keep_going=args.keep_going)
    return 0 if all(r["status"] == "ok" or r["status"].startswith("skipped") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["FIGURES", "Figure", "by_name", "listing", "script", "run", "main"]
