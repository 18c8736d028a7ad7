"""Shared by the predict tests and benchmark: a tiny bench-trained detector, built once, and
the real media that ships inside installed packages (located, never copied into the repo)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from austack.cli.main import cli
from austack.example_video import carphone_path  # noqa: F401  (the predict tests' real video)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def build_bench_run(root: Path) -> dict:
    """synth (6 BP4D subjects x 8 frames) -> prepare (dlib, raw, 96 px) -> bench fold 1."""
    raw, store, runs = root / "raw", root / "store.h5", root / "runs"
    for args in (("synth", raw, "--layout", "bp4d", "--subjects", 6, "--sessions", 1, "--frames", 8),
                 ("prepare", "bp4d", raw, store, "--landmarks", "dlib", "--store", "raw", "--size", 96),
                 ("bench", "test_tiny", "wce", "--data", store, "--fold", 1, "--epochs", 1,
                  "--batch-size", 8, "--image-size", 64, "--crop-fraction", 1, "--workers", 0,
                  "--device", "cpu", "--out-dir", runs, "--db", runs / "db.sqlite")):
        r = invoke(*args)
        assert r.exit_code == 0, r.output
    (fold_dir,) = runs.glob("*/fold1")
    return {"raw": raw, "store": store, "run_dir": fold_dir.parent, "fold_dir": fold_dir,
            "detector": fold_dir / "detector.pt"}


def read_video(path: Path) -> list[np.ndarray]:
    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0, codec: str = "MJPG") -> Path:
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    assert out.isOpened(), f"OpenCV cannot write {path} with {codec}"
    for f in frames:
        out.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out.release()
    return path
