"""How the demo recipes' settings are chosen: on validation F1 only, on a synthetic set the demo
never uses.

    python baselines/recipes/tune_demo.py --out /tmp/tune

synthesises the demo's layout and size with a *tuning* seed (1; the demo uses 0), prepares it
as the demo does, trains every candidate below on every fold, and prints each candidate's mean
validation F1 (validation subjects are drawn from each fold's training part). The test split
is never read for the choice: the script prints no test number. The candidate with the best
mean validation F1 becomes the recipe. Rerunning resumes (finished folds are reused).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

TUNING_SEED = 1   # the demo's data is drawn with seed 0

# Each candidate: the recipe it starts from and what it changes.
CANDIDATES = {
    "demo-wce": [
        {"lr": 3e-3},
        {"lr": 1e-3},
        {"grad_clip": None},
        {"batch_size": 32},
    ],
    "demo-aunce": [
        {"augment": "basic"},
        {"augment": "simclr"},
        {"linear_lr": 0.01, "linear_epochs": 10},
    ],
}


def main() -> None:
    from austack.demo import FULL, LAYOUT, PREPARE
    from austack.engine import BenchConfig, run_and_record
    from austack.runs.recipes import load_recipe
    from austack.prepare import prepare
    from austack.synth import synthesize

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("tune-out"))
    parser.add_argument("--recipes", default=",".join(CANDIDATES))
    args = parser.parse_args()
    console = Console()
    raw, store, db = args.out / "raw", args.out / "tune.h5", args.out / "results.sqlite"
    if not store.exists():
        if not raw.exists():
            synthesize(raw, LAYOUT, subjects=FULL.subjects, sessions=FULL.sessions, frames=FULL.frames,
                       size=FULL.size, seed=TUNING_SEED)
        prepare(LAYOUT, raw, store, workers=2, resume=True, **PREPARE)
    for name in args.recipes.split(","):
        for change in CANDIDATES[name]:
            cfg = BenchConfig(**{**load_recipe(name), **change, "data": str(store),
                                         "out_dir": str(args.out / "runs"), "db": str(db)})
            outcome = run_and_record(cfg, console=Console(quiet=True))
            val = [r.val_f1_mean for r in outcome.ok]
            mean = sum(val) / len(val) if val else float("nan")
            console.print(f"{name} {change}: mean validation F1 {100 * mean:.1f} over {len(val)} folds "
                          f"(config {outcome.rows[0].config_hash})", markup=False)


if __name__ == "__main__":
    main()
