"""pytest-benchmark of prepare's per-frame path against the per-frame loop research repos run
(`cv2.imread` -> 49-point matrix -> `warpAffine` -> `imwrite`), in the same run, on the same
BP4D-size frames (1392 x 1040, JPEG quality 100, shipped landmarks).

CI runs each once (--benchmark-disable) as a smoke test; time them on one core with
    taskset -c 0 python -m pytest tests/bench/test_bench_prepare.py --benchmark-enable
"""
import cv2
import numpy as np
import pytest

from austack.faces.align import landmarks_68_to_49, similarity_49, warp
from austack.prepare import Job, process_chunk

from _bp4d_frames import write_bp4d_frames

FRAMES = 16


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return write_bp4d_frames(tmp_path_factory.mktemp("bp4d"), FRAMES)


@pytest.mark.benchmark(group="prepare-per-frame")
def test_bench_per_frame_loop(benchmark, frames, tmp_path):
    def loop():
        for fr in frames:
            bgr = cv2.imread(fr.source.path)
            m = similarity_49(landmarks_68_to_49(fr.landmarks), 256, 2.9)
            cv2.imwrite(str(tmp_path / f"{fr.frame}.jpg"), warp(bgr, m, 256))
        return len(frames)

    assert benchmark(loop) == FRAMES
    assert cv2.imread(str(tmp_path / "0.jpg")).shape == (256, 256, 3)


@pytest.mark.benchmark(group="prepare-per-frame")
def test_bench_prepare_chunk(benchmark, frames):
    job = Job(frames, "shipped", 256, 2.9, "jpeg", 95, False, 12)
    result = benchmark(process_chunk, job)
    assert len(result.rows) == FRAMES and result.rows.face.all()
    assert np.isfinite(result.rows.matrix).all()


@pytest.mark.benchmark(group="prepare-per-frame")
def test_bench_prepare_chunk_cuda(benchmark, frames):
    """`prepare --device cuda` on the same frames (tests/bench/gpu_prepare.sh runs it)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    job = Job(frames, "shipped", 256, 2.9, "jpeg", 95, False, 12, device="cuda")
    process_chunk(job)   # CUDA context and nvJPEG handles outside the timing
    result = benchmark(process_chunk, job)
    assert len(result.rows) == FRAMES and result.rows.face.all()
