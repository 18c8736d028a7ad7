"""A study's synthetic data: synthesised once without label noise, prepared once, reused.

`<out>/study.json` records the data settings of each finished stage; a rerun with the same
settings reuses them, a rerun with other settings is refused (a study never mixes data).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from ..fileio import atomic_write_text

STATE = "study.json"
LAYOUT = "bp4d"


@dataclass(frozen=True)
class SynthData:
    """How much synthetic BP4D a study draws, and the face size it is prepared at."""

    subjects: int          # dealt over the protocol's three parts: every fold gets test subjects
    sessions: int
    frames: int
    synth_size: int        # frame width handed to `synthesize`
    face_size: int         # aligned face side in the store
    box_enlarge: float = 2.0   # as the demo: a tight box, so the face fills the small image
    seed: int = 0


def ensure_store(out: Path, data: SynthData, study: str, *, workers: int = 1,
                 say: Callable[[str], None] = print) -> Path:
    """The study's prepared store under `out`, made (or resumed) when missing."""
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out, study)
    settings = asdict(data)
    if state.get("data") not in (None, settings):
        raise ConfigError(f"{out} holds a study made from other data ({json.dumps(state['data'])}); "
                          f"pass another --out or delete {out}", path=out)
    raw, store = out / "raw" / LAYOUT, out / f"{LAYOUT}.h5"
    if not state.get("synth_done"):
        from ..synth import synthesize

        say(f"synth: {data.subjects} subjects x {data.sessions} sessions x {data.frames} frames, no "
            f"label noise -> {raw}")
        if raw.exists() and not any(raw.iterdir()):
            shutil.rmtree(raw)
        synthesize(raw, LAYOUT, subjects=data.subjects, sessions=data.sessions, frames=data.frames,
                   size=data.synth_size, noise=0.0, seed=data.seed, overwrite=raw.exists())
        _save_state(out, {**state, "study": study, "data": settings, "synth_done": True})
        state = _load_state(out, study)
    if not state.get("prepare_done"):
        from ..prepare import prepare

        say(f"prepare: {data.face_size} px faces -> {store}")
        prepare(LAYOUT, raw, store, workers=workers, resume=True, size=data.face_size,
                box_enlarge=data.box_enlarge, landmarks="auto")
        _save_state(out, {**state, "prepare_done": True})
    return store


def _load_state(out: Path, study: str) -> dict:
    path = out / STATE
    if not path.exists():
        if any(p.name not in ("raw",) for p in out.iterdir()):
            raise ConfigError(f"{out} is not empty and holds no {STATE}; a study writes only into an "
                              f"empty folder or its own: pass another --out", path=out)
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path} ({e}); delete {out} and run the study again", path=path) from None
    if state.get("study") not in (None, study):
        raise ConfigError(f"{out} holds a {state.get('study')!r} study, not a {study!r} one; pass another "
                          f"--out", path=out)
    return state


def _save_state(out: Path, state: dict) -> None:
    atomic_write_text(out / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")
