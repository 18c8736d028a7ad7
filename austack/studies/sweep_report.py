"""A finished sweep as files: results.csv (one row per point x seed x fold), summary.csv (per
point: mean F1 with a 95% CI over test subjects), sweep-<param>.png/.svg and README.md."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..results.rescore import interval_for_rows
from .plots import sweep_figure
from .report import markdown_table, write_csv, write_readme
from .sweep import Sweep

FIXED = ("seed", "fold", "config_hash", "row_id", "status", "f1", "wall_s", "run_dir", "error")


def sweep_tables(sweep: Sweep) -> tuple[list[dict], list[dict]]:
    keys = [p.key for p in sweep.params]
    results, summary = [], []
    for point in sweep.points:
        for row_id, r in zip(point.ids, point.rows):
            results.append({**point.values, "seed": r.seed, "fold": r.fold, "config_hash": r.config_hash,
                            "row_id": row_id, "status": r.status,
                            "f1": 100 * r.f1_mean if r.status == "ok" and r.f1_mean is not None else None,
                            "wall_s": r.wall_s, "run_dir": r.run_dir, "error": r.error})
        ok = [r for r in point.rows if r.status == "ok"]
        if ok:
            i = interval_for_rows(ok).mean_f1
            summary.append({**{k: point.values[k] for k in keys}, "config_hash": point.config_hash,
                            "folds": len({r.fold for r in ok}), "seeds": len({r.seed for r in ok}),
                            "f1": 100 * i.estimate, "f1_low": 100 * i.low, "f1_high": 100 * i.high})
    return results, summary


def write_sweep_outputs(sweep: Sweep, commands: Sequence[str]) -> list[Path]:
    out, keys = sweep.out, [p.key for p in sweep.params]
    results, summary = sweep_tables(sweep)
    files = [write_csv(out / "results.csv", results, keys + list(FIXED)),
             write_csv(out / "summary.csv", summary, keys + ["config_hash", "folds", "seeds", "f1", "f1_low",
                                                             "f1_high"])]
    for key in keys if summary else ():
        others = [k for k in keys if k != key]
        records = [{**r, "_others": ", ".join(f"{k}={r[k]}" for k in others)} for r in summary]
        files += sweep_figure(records, key, "_others" if others else None, out / f"sweep-{_safe(key)}.png",
                              title=f"{sweep.recipe}: F1 against {key} (95% CIs over test subjects)")
    table = markdown_table(keys + ["F1 % (95% CI)", "folds", "config"],
                           [[r[k] for k in keys] + [f"{r['f1']:.1f} ({r['f1_low']:.1f}-{r['f1_high']:.1f})",
                                                    r["folds"], f"`{r['config_hash']}`"] for r in summary])
    failed = sum(r["status"] != "ok" for r in results)
    files.append(write_readme(
        out, title=f"Sweep of {sweep.recipe} over {', '.join(keys)}", commands=commands,
        hashes={p.label: p.config_hash for p in sweep.points if p.config_hash}, started=sweep.started,
        seconds=sweep.seconds, table=table, files=[f.name for f in files] + ["README.md"],
        notes=f"{failed} fold(s) failed; their errors are in results.csv." if failed else "",
        what=f"Recipe `{sweep.recipe}` at every point of the grid; mean test F1 over folds and seeds with "
             f"a 95% subject-bootstrap interval. Each point is its own config hash in the results database."))
    return files


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
