"""Synthetic datasets in the real raw layouts: `synthesize(dest, "bp4d")`.

The driver plans subjects and sessions through the layout writer, draws each session's AU
intensities (`episodes`), renders its frames lazily from a per-subject face (`face`,
`actions`) so memory stays bounded, hands the sessions to the writer and keeps the truth in
`dest/_synth/`: `manifest.json` (settings, seed, versions, per-session counts, injected
anomalies, label noise) and `labels_clean.csv` (the intensities the frames show, before noise).

Every random draw comes from a stream keyed by (seed, purpose, subject, session), so the same
seed gives the same bytes, and a subject looks the same whatever else is generated.

Heavy imports (cv2, scipy, dlib) happen inside `synthesize`, so importing this package, the
layout contract or the CLI stays cheap.
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import json
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .. import __version__
from ..errors import ConfigError
from ..fileio import atomic_open, atomic_write_text
from ..progress import Progress
from ..protocols import load_protocol
from .layouts.base import ALL_AUS, LAYOUTS, SynthSession, Truth

# Layout writer modules in austack.synth.layouts; importing them fills LAYOUTS.
LAYOUT_MODULES = ("bp4d", "bp4dplus", "disfa", "gft", "affwild2")

DEFAULT_SIZE = 256          # frame width; a 256 x 192 frame renders in a few ms, dlib finds the face
DEFAULT_ASPECT = 0.75       # height / width when the writer names no `frame_aspect`
MIN_SIZE = 96
MAX_NOISE = 0.5
SUBJECT_CACHE = 4           # subjects kept rendered-ready at once (a few MB each)
SYNTH_DIR = "_synth"
MANIFEST = "manifest.json"
CLEAN_LABELS = "labels_clean.csv"



@dataclass
class SynthReport:
    dest: Path
    layout: str
    protocol: str                 # id@vN whose AUs and label rule the labels follow
    subjects: list[str]
    sessions: int
    frames: int                   # frames rendered
    frame_size: tuple[int, int]   # (width, height)
    seed: int
    noise: float
    flipped: int                  # labels of the protocol's AUs flipped by the noise
    labels: int                   # labels of the protocol's AUs written
    anomalies: list[tuple[str, str]]
    truth: Truth
    seconds: float
    manifest: Path


def load_layouts() -> list[str]:
    """Import the layout writer modules (importing one registers it); the registered names."""
    for name in LAYOUT_MODULES:
        importlib.import_module(f"{__name__}.layouts.{name}")
    return LAYOUTS.list()


def list_layouts(pattern: str = "*") -> list[str]:
    """Registered synthetic layouts matching the fnmatch `pattern`."""
    load_layouts()
    return LAYOUTS.list(pattern)


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """An independent stream for (seed, keys...), stable across runs and machines."""
    words = [int.from_bytes(hashlib.sha256(k.encode()).digest()[:4], "little") for k in keys]
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


def _check(subjects: int, sessions: int, frames: int, size: int, noise: float, seed: int) -> None:
    for name, value in (("subjects", subjects), ("sessions", sessions), ("frames", frames)):
        if int(value) < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    if size < MIN_SIZE:
        raise ConfigError(f"size {size} px is too small for a detectable face; use at least {MIN_SIZE}")
    if not 0.0 <= noise <= MAX_NOISE:
        raise ConfigError(f"noise {noise} must be a flip rate between 0 and {MAX_NOISE}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")


def _plan(writer, layout: str, subjects: int, sessions: int, seed: int
          ) -> tuple[list[str], list[tuple[str, str]]]:
    """Subject ids and (subject, session) pairs; a plan the layout cannot hold is refused."""
    ids = list(writer.subject_ids(subjects, _rng(seed, "plan")))
    if len(ids) != subjects:
        raise ConfigError(f"{layout} has {len(ids)} subjects; asked for {subjects}: pass --subjects "
                          f"{len(ids)} or fewer")
    return ids, [(s, x) for s in ids for x in writer.session_ids(s, sessions)]


def _prepare_dest(dest: Path, overwrite: bool) -> None:
    """An empty `dest`; an earlier synthetic set there is removed only with `overwrite`."""
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} is a file; synth writes a folder", path=dest)
    if dest.is_dir() and any(dest.iterdir()):
        if not overwrite:
            raise ConfigError(f"{dest} is not empty; choose an empty folder or pass --overwrite "
                              "to replace an earlier synthetic set", path=dest)
        if not (dest / SYNTH_DIR / MANIFEST).is_file():
            raise ConfigError(f"refusing to overwrite {dest}: it has no {SYNTH_DIR}/{MANIFEST}, so austack "
                              "synth did not write it; choose an empty folder", path=dest)
        for entry in dest.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    (dest / SYNTH_DIR).mkdir(parents=True, exist_ok=True)


class _Counter:
    """Frames rendered per session (a writer may read a session twice; count it once)."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.progress = total, progress
        self.done: dict[tuple[str, str], int] = {}

    def advance(self, key: tuple[str, str], n: int) -> None:
        if n > self.done.get(key, 0):
            self.done[key] = n
            if self.progress is not None:
                self.progress(sum(self.done.values()), self.total, key[0])

    @property
    def rendered(self) -> int:
        return sum(self.done.values())


def synthesize(dest: str | Path, layout: str, *, subjects: int = 6, sessions: int = 2, frames: int = 40,
               size: int = DEFAULT_SIZE, noise: float = 0.0, seed: int = 0, overwrite: bool = False,
               progress: Progress | None = None) -> SynthReport:
    """Write a synthetic dataset in `layout`'s raw layout under `dest` and return its report.

    `size` is the frame width (the height follows the writer's `frame_aspect`); `noise` is the
    probability of flipping each written occurrence label (the frames show the clean ones).
    """
    from .actions import render_frame
    from .episodes import apply_noise, au_intensities, target_rates
    from .face import BASE_PHOTO, head_motion, make_subject

    started = time.perf_counter()
    _check(subjects, sessions, frames, size, noise, seed)
    load_layouts()
    writer = LAYOUTS.get(layout)()
    protocol = load_protocol(writer.protocol)
    ids, plan = _plan(writer, layout, subjects, sessions, seed)    # before anything is written
    dest = Path(dest).expanduser().resolve()
    _prepare_dest(dest, overwrite)
    manifest_path = dest / SYNTH_DIR / MANIFEST
    # marked synthetic from the first byte: an interrupted run leaves an incomplete manifest
    atomic_write_text(manifest_path, json.dumps(_identity(layout, protocol, seed, noise, False)) + "\n")

    aspect = float(getattr(writer, "frame_aspect", DEFAULT_ASPECT))
    frame_size = (int(size), int(round(size * aspect / 2)) * 2)
    positive_min = protocol.label.positive_min
    rates = target_rates(protocol)

    looks: dict[str, dict] = {}

    @lru_cache(maxsize=SUBJECT_CACHE)
    def subject_of(subject_id: str):
        face = make_subject(subject_id, _rng(seed, "subject", subject_id), frame_size)
        looks[subject_id] = _rounded(face.appearance)
        return face

    counter = _Counter(len(plan) * frames, progress)

    def session_frames(subject_id: str, session: str, clean: np.ndarray) -> Callable[[], Iterator]:
        def frames_() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            face = subject_of(subject_id)
            rng = _rng(seed, "render", subject_id, session)
            poses = head_motion(len(clean), rng)
            for t, (levels, pose) in enumerate(zip(clean, poses)):
                frame = render_frame(face, levels, rng, pose)
                counter.advance((subject_id, session), t + 1)
                yield frame
        return frames_

    synth_sessions = []
    for subject_id, session in plan:
        clean = au_intensities(frames, rates, positive_min, _rng(seed, "labels", subject_id, session))
        written = apply_noise(clean, noise, positive_min, _rng(seed, "noise", subject_id, session))
        synth_sessions.append(SynthSession(subject_id, session, clean, written,
                                           session_frames(subject_id, session, clean)))

    truth = writer.write(dest, synth_sessions, _rng(seed, "write"))

    _write_clean_labels(dest / SYNTH_DIR / CLEAN_LABELS, synth_sessions)
    manifest = _identity(layout, protocol, seed, noise, True)
    manifest.update(_contents(protocol, synth_sessions, rates, truth))
    labels = sum(s.n_frames for s in synth_sessions) * len(protocol.aus)
    flipped = sum(s["flipped"] for s in manifest["sessions"])
    manifest["noise"].update(flipped=flipped, labels=labels)
    manifest["settings"] = {"subjects": subjects, "sessions": sessions, "frames": frames, "size": size,
                            "frame_size": list(frame_size), "noise": noise}
    manifest["base_photo"] = BASE_PHOTO
    manifest["subjects"] = {i: looks[i] for i in ids if i in looks}
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return SynthReport(dest, layout, protocol.id, ids, len(plan), counter.rendered, frame_size, seed, noise,
                       flipped, labels, list(truth.anomalies), truth, time.perf_counter() - started,
                       manifest_path)


def _identity(layout: str, protocol, seed: int, noise: float, complete: bool) -> dict:
    """What marks a folder as synthetic, whatever else the manifest holds: the prepare step
    records these in the store so a synthetic result can never pass for a real one."""
    return {"synthetic": True, "complete": complete, "austack_version": __version__, "layout": layout,
            "protocol": protocol.id, "protocol_hash": protocol.hash, "seed": int(seed),
            "noise": {"rate": float(noise)}}


def _contents(protocol, sessions: list[SynthSession], rates: np.ndarray, truth: Truth) -> dict:
    """Label rates (target and clean), label flips per session and anomalies of the written set."""
    positive_min = protocol.label.positive_min
    scored = [ALL_AUS.index(a) for a in protocol.aus]
    flips = [int(((s.clean[:, scored] >= positive_min) != (s.written[:, scored] >= positive_min)).sum())
             for s in sessions]
    all_clean = np.concatenate([s.clean for s in sessions])
    return {
        "aus": list(ALL_AUS),
        "positive_min": positive_min,
        "rates": {f"AU{a}": {"target": round(float(r), 4),
                             "clean": round(float((all_clean[:, k] >= positive_min).mean()), 4)}
                  for k, (a, r) in enumerate(zip(ALL_AUS, rates))},
        "sessions": [{"subject": s.subject, "session": s.session, "frames": s.n_frames, "flipped": f}
                     for s, f in zip(sessions, flips)],
        "anomalies": [list(a) for a in truth.anomalies],
        "files": {"clean_labels": CLEAN_LABELS},
    }


def _rounded(look: dict) -> dict:
    r = lambda v: round(float(v), 4)
    return {k: ([r(x) for x in v] if isinstance(v, list) else v if isinstance(v, str) else r(v))
            for k, v in look.items()}


def _write_clean_labels(path: Path, sessions: list[SynthSession]) -> None:
    """One row per rendered frame: subject, session, 0-based index in the session, intensities."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["subject", "session", "index", *(f"AU{a}" for a in ALL_AUS)])
        for s in sessions:
            for t, row in enumerate(s.clean):
                out.writerow([s.subject, s.session, t, *row.tolist()])
