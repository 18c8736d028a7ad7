"""Results of tools austack did not train (OpenFace, py-feat, LibreFace ...), scored by
`austack score` on a store's folds and kept as rows of the results database.

An external row uses the ordinary columns: `backbone` is the tool, `loss` is "external",
`selected_on` is "none" (the tool chose nothing on these folds), `config` and `provenance`
carry the tool's name and version and each CSV's sha256. Its `config_hash` covers those, so
rescoring the same files is one leaderboard row, and its per-fold `predictions.npz` (the
tool's 0/1 calls on the scored test frames) gives the leaderboard its subject-bootstrap CI.
"""
from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from .schema import ResultRow

EXTERNAL = "external"


def is_external(row: ResultRow) -> bool:
    return row.loss == EXTERNAL and bool((row.provenance or {}).get(EXTERNAL))


def method_label(row: ResultRow) -> str:
    info = row.provenance[EXTERNAL]
    version = f" {info['version']}" if info.get("version") else ""
    return f"{info['tool']}{version} (external)"


def setup_label(row: ResultRow) -> str:
    info = row.provenance[EXTERNAL]
    shas = ", ".join(s[:8] for s in info.get("csv_sha256", []))
    return f"external; missing {info.get('missing', 'skip')}; csv {shas}"


def config_of(report) -> dict:
    files = report.predictions.files
    return {EXTERNAL: True, "tool": report.tool, "tool_version": report.tool_version, "missing": report.missing,
            "csv_sha256": sorted(f.sha256 for f in files), "aus": list(report.aus)}


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def external_rows(report, out_dir: str | Path) -> list[ResultRow]:
    """One row per scored fold; each fold's calls saved as `out_dir/fold<k>/predictions.npz`."""
    from ..runs.rundir import save_predictions

    config = config_of(report)
    chash = config_hash(config)
    out_dir = Path(out_dir).expanduser().resolve()
    files = report.predictions.files
    prov = {EXTERNAL: {"tool": report.tool, "version": report.tool_version, "missing": report.missing,
                       "csv": [f.path for f in files], "csv_sha256": [f.sha256 for f in files],
                       "csv_rows": {"matched": sum(f.matched for f in files),
                                    "unmatched": sum(f.unmatched for f in files),
                                    "no_face": sum(f.no_face for f in files)}},
            "python": platform.python_version()}
    rows = []
    for f in report.folds:
        fold_dir = out_dir / f"fold{f.fold}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        path, sha = save_predictions(fold_dir, {"test": (f.probs, f.labels, f.rows)}, {"test": f.subjects},
                                     report.aus, [0.5] * len(report.aus))
        rows.append(ResultRow(
            dataset=report.dataset, protocol=report.protocol, protocol_hash=report.protocol_hash,
            store=report.store, store_checksum=report.store_identity, fold=f.fold, backbone=report.tool,
            loss=EXTERNAL, loss_options={}, seed=0, epochs=0, config=config, aus=list(report.aus),
            f1=[float(x) for x in f.scores.f1], accuracy=[float(x) for x in f.scores.accuracy],
            f1_mean=float(f.scores.f1_mean), accuracy_mean=float(f.scores.accuracy_mean), selected_on="none",
            n_test=f.scored_frames, device="", austack_version=__version__, torch_version="", run_dir=str(out_dir),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"), config_hash=chash,
            synthetic=report.synthetic, label_noise=report.label_noise, thresholds=[0.5] * len(report.aus),
            predictions=str(path), predictions_sha256=sha, provenance=prov))
    return rows


def record(report, db_path: str | Path, out_dir: str | Path | None = None) -> list[tuple[int, bool]]:
    """Store the report's fold rows in the results database (once per tool, files and store):
    [(row id, inserted)]. Predictions go to `out_dir` (default: beside the database)."""
    from .db import ResultsDB

    db_path = Path(db_path).expanduser().resolve()
    chash = config_hash(config_of(report))
    out_dir = out_dir or db_path.parent / "external" / f"{report.tool}-{chash[:12]}"
    with ResultsDB(db_path) as db:
        db.check_writable()
        return [db.insert_once(r) for r in external_rows(report, out_dir)]

