"""A finished noise study as files: results.csv (one row per kind x level x loss x seed x
fold), summary.csv (per kind, level and loss: mean F1 with a 95% CI, against clean and,
separately, noisy test labels), noise.png/.svg and README.md."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from ..results.rescore import interval_for_rows
from .noise import NoiseStudy
from .noise_drops import DROP_COLUMNS, noise_drops
from .noisy_scoring import flip_seed, noisy_interval
from .plots import noise_figure
from .report import markdown_table, write_csv, write_readme

RESULT_COLUMNS = ("kind", "level", "loss", "seed", "fold", "config_hash", "row_id", "status", "f1_clean",
                  "f1_noisy_test", "test_flip_seed", "n_train", "n_test", "wall_s", "run_dir", "error")
SUMMARY_COLUMNS = ("kind", "level", "loss", "config_hash", "folds", "seeds", "f1", "f1_low", "f1_high",
                   "f1_noisy", "f1_noisy_low", "f1_noisy_high", "n_subjects")


def tidy_rows(study: NoiseStudy) -> tuple[list[dict], list[dict]]:
    """(results rows, summary records); F1 in percent."""
    results, summary = [], []
    for s in study.settings:
        ok = [r for r in s.rows if r.status == "ok"]
        noisy, per_row = noisy_interval(ok, s.level, s.kind) if ok else (None, {})
        for row_id, r in zip(s.ids, s.rows):
            results.append({"kind": s.kind, "level": s.level, "loss": s.loss, "seed": r.seed, "fold": r.fold,
                            "config_hash": r.config_hash, "row_id": row_id, "status": r.status,
                            "f1_clean": _pct(r.f1_mean) if r.status == "ok" else None,
                            "f1_noisy_test": _pct(per_row.get((r.fold, r.seed))),
                            "test_flip_seed": flip_seed(r.seed, r.fold), "n_train": r.n_train,
                            "n_test": r.n_test, "wall_s": r.wall_s, "run_dir": r.run_dir, "error": r.error})
        if not ok:
            continue
        clean = interval_for_rows(ok)
        summary.append({"kind": s.kind, "level": s.level, "loss": s.loss, "config_hash": s.config_hash,
                        "folds": len({r.fold for r in ok}), "seeds": len({r.seed for r in ok}),
                        **_interval("f1", clean.mean_f1), **_interval("f1_noisy", noisy.mean_f1),
                        "n_subjects": clean.n_subjects})
    return results, summary


def _pct(x):
    return None if x is None else 100 * float(x)


def _interval(key: str, i) -> dict:
    return {key: 100 * i.estimate, f"{key}_low": 100 * i.low, f"{key}_high": 100 * i.high}


def _always_active(out: Path) -> float | None:
    """Mean over folds of the always-active F1 (%) on the study store's clean test folds."""
    from ..scoring.baselines import trivial_all_active_f1
    from .data import LAYOUT

    store = out / f"{LAYOUT}.h5"
    if not store.is_file():
        return None
    per_fold = trivial_all_active_f1(store)
    return 100 * sum(per_fold.values()) / len(per_fold)


def write_noise_outputs(study: NoiseStudy, commands: Sequence[str], *, quick: bool,
                        figure: str | Path | None = None) -> list[Path]:
    out = study.out
    results, summary = tidy_rows(study)
    drops, drop_notes = noise_drops(study.settings)
    files = [write_csv(out / "results.csv", results, RESULT_COLUMNS),
             write_csv(out / "summary.csv", summary, SUMMARY_COLUMNS),
             write_csv(out / "drops.csv", drops, DROP_COLUMNS)]
    size = "quick" if quick else "full"
    if summary:
        files += noise_figure(summary, out / "noise.png",
                              title=f"Label noise on synthetic BP4D ({size} study), 95% CIs over test subjects",
                              always_active=_always_active(out))
        if figure is not None:
            Path(figure).parent.mkdir(parents=True, exist_ok=True)
            files.append(Path(shutil.copyfile(out / "noise.png", figure)))
    table = markdown_table(
        ("kind", "level", "loss", "F1 clean (95% CI)", "F1 noisy test (95% CI)", "config"),
        [(r["kind"], f"{r['level']:g}", r["loss"], f"{r['f1']:.1f} ({r['f1_low']:.1f}-{r['f1_high']:.1f})",
          f"{r['f1_noisy']:.1f} ({r['f1_noisy_low']:.1f}-{r['f1_noisy_high']:.1f})", f"`{r['config_hash']}`")
         for r in summary])
    table += "\n\n" + drops_table(drops)
    failed = sum(r["status"] != "ok" for r in results)
    notes = "\n".join(drop_notes) + "\n\n" if drop_notes else ""
    notes += (f"{failed} fold(s) failed; their errors are in results.csv." if failed else "") + \
        ("\n\nThe quick study's data and training are tiny: its F1 values show that the study "
         "runs, not how the losses compare on real data." if quick else "")
    hashes = {f"{r['loss']}, {r['kind']} {r['level']:g}": r["config_hash"] for r in summary}
    files.append(write_readme(
        out, title=f"Label-noise study ({size})", commands=commands, hashes=hashes, started=study.started,
        seconds=study.seconds, table=table, notes=notes.strip(), files=[f.name for f in files] + ["README.md"],
        what="Training and validation labels flipped at each level (test labels clean); F1 in % over "
             "every fold and seed, with 95% subject-bootstrap intervals. `F1 noisy test` scores the same "
             "predictions against test labels flipped the same way (seed per fold in results.csv). "
             "Drops: each loss's clean F1 minus its noisy F1 (points), and the difference of two losses' "
             "drops, with paired 95% subject-bootstrap intervals (drops.csv); a difference whose interval "
             "holds 0 shows no difference."))
    return files


def drops_table(drops: list[dict]) -> str:
    """Markdown: per kind, level and loss, the drop and (against the first loss) the drop difference."""
    def cell(r):
        flag = "*" if r["flag"] else ""
        return f"{r['points']:+.1f} ({r['low']:+.1f} to {r['high']:+.1f}){flag}"

    rows = []
    for r in drops:
        if r["what"] != "drop":
            continue
        diff = next((d for d in drops if d["what"] == "drop difference" and d["kind"] == r["kind"]
                     and d["level"] == r["level"] and d["loss"] == r["loss"]), None)
        rows.append((r["kind"], f"{r['level']:g}", r["loss"], cell(r),
                     f"{cell(diff)} vs {diff['versus']}: {diff['reading']}" if diff else ""))
    table = markdown_table(("kind", "level", "loss", "drop from own clean F1 (95% CI)",
                            "drop difference (95% CI)"), rows)
    flagged = next((r["flag"] for r in drops if r["flag"]), "")
    return table + (f"\n\n\\* interval flagged: {flagged}" if flagged else "")
