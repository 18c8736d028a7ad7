"""`prepare --device`: nvJPEG decode and one batched warp per chunk (`austack/prepare/gpu.py`).

The arithmetic is checked on the CPU (torchvision's libjpeg and `grid_sample` there); the
CUDA test runs where a GPU is present. The GPU path must stay within 2 grey levels of the
CPU path's faces, keep every other column equal, and hand any chunk it cannot take whole
to the CPU path."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from click.testing import CliRunner  # noqa: E402

from austack.faces.align import warp  # noqa: E402
from austack.cli.main import cli  # noqa: E402
from austack.errors import ConfigError, StoreMismatchError  # noqa: E402
from austack.prepare import Job, prepare, process_chunk  # noqa: E402
from austack.prepare.gpu import check_device, process_chunk_gpu, warp_batch  # noqa: E402
from austack.store import decode_image, open_store, verify  # noqa: E402

from _bp4d_frames import write_bp4d_frames  # noqa: E402

TOLERANCE = 2.0   # grey levels, mean absolute difference, as for the CPU path's scaled decode
COLUMNS = ("labels", "landmarks", "matrix", "face", "landmark_origin", "frame")


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return write_bp4d_frames(tmp_path_factory.mktemp("bp4d"), 3)


def _job(frames, device=None, size=128):
    return Job(frames, "shipped", size, 2.9, "jpeg", 95, False, 12, device=device)


def _faces(result):
    return [decode_image(r, "jpeg").astype(np.int16) for r in result.rows.images]


def test_the_batched_warp_is_opencvs_bilinear_with_its_grey_border():
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), (5, 5), 2)
    matrices = []
    for _ in range(6):   # some reach far outside the frame: the border blend is checked too
        a, s = rng.uniform(-0.5, 0.5), rng.uniform(0.3, 2.0)
        matrices.append([[s * np.cos(a), -s * np.sin(a), rng.uniform(-150, 60)],
                         [s * np.sin(a), s * np.cos(a), rng.uniform(-150, 60)]])
    batch = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).repeat(6, 1, 1, 1)
    out = warp_batch(batch, np.array(matrices), 96).permute(0, 2, 3, 1).numpy()
    for face, m in zip(out, matrices):
        diff = np.abs(face.astype(np.int16) - warp(image, np.array(m), 96))
        assert diff.max() <= 1 and diff.mean() < 0.05


def test_a_chunk_on_a_device_matches_the_cpu_path(frames):
    cpu, gpu = process_chunk(_job(frames)), process_chunk(_job(frames, "cpu"))
    assert gpu.rows.face.all()
    for a, b in zip(_faces(cpu), _faces(gpu)):
        assert np.abs(a - b).mean() < TOLERANCE
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(cpu.rows, name), getattr(gpu.rows, name), err_msg=name)


@pytest.mark.parametrize("spoil", ["no landmarks", "png", "missing file", "not a jpeg", "truncated",
                                   "exif turned"])
def test_a_chunk_it_cannot_take_whole_runs_the_cpu_path(frames, tmp_path, spoil):
    bad = frames[1]
    if spoil == "no landmarks":
        bad = replace(bad, landmarks=None)
    elif spoil == "png":
        path = tmp_path / "1.png"
        cv2.imwrite(str(path), cv2.imread(bad.source.path))
        bad = replace(bad, source=replace(bad.source, path=str(path)))
    elif spoil == "missing file":
        bad = replace(bad, source=replace(bad.source, path=str(tmp_path / "gone.jpg")))
    elif spoil == "truncated":   # cut at 60%: a decoder would fill the rest with grey
        path = tmp_path / "1.jpg"
        data = open(bad.source.path, "rb").read()
        path.write_bytes(data[:len(data) * 6 // 10])
        bad = replace(bad, source=replace(bad.source, path=str(path)))
    elif spoil == "not a jpeg":
        path = tmp_path / "1.jpg"
        path.write_bytes(b"\xff\xd8 truncated")
        bad = replace(bad, source=replace(bad.source, path=str(path)))
    else:   # OpenCV turns it by its EXIF orientation; CUDA's decode_jpeg would not
        from PIL import Image

        exif = Image.Exif()
        exif[0x0112] = 3
        path = tmp_path / "1.jpg"
        Image.open(bad.source.path).save(path, "JPEG", quality=95, exif=exif.tobytes())
        bad = replace(bad, source=replace(bad.source, path=str(path)))
    chunk = [frames[0], bad, frames[2]]
    assert process_chunk_gpu(_job(chunk, "cpu")) is None
    cpu, fallback = process_chunk(_job(chunk)), process_chunk(_job(chunk, "cpu"))
    assert [bytes(r) for r in cpu.rows.images] == [bytes(r) for r in fallback.rows.images]
    assert cpu.rows.anomalies == fallback.rows.anomalies and cpu.no_face == fallback.no_face


def test_prepare_on_a_device_records_it_and_will_not_resume_without_it(fake_raw, tmp_path):
    plain, dev = tmp_path / "plain.h5", tmp_path / "dev.h5"
    prepare("test-fake", fake_raw, plain, landmarks="shipped", size=64)
    prepare("test-fake", fake_raw, dev, landmarks="shipped", size=64, device="cpu")
    assert verify(dev).ok
    with open_store(plain) as a, open_store(dev) as b:
        assert (a.settings.pixel_decoder, b.settings.pixel_decoder) == ("opencv", "torchvision-cpu")
        assert len(a) == len(b) and a.identity != b.identity
        for k in range(len(a)):
            assert np.abs(a.image(k).astype(np.int16) - b.image(k)).mean() < TOLERANCE
    with pytest.raises(StoreMismatchError, match="pixel_decoder"):
        prepare("test-fake", fake_raw, dev, landmarks="shipped", size=64, resume=True)
    said = " ".join(CliRunner().invoke(cli, ["info", str(dev)], env={"COLUMNS": "80"}).output.split())
    assert "decoded and warped by torchvision-cpu" in said


def test_a_device_that_cannot_be_used_is_one_clear_error(fake_raw, tmp_path):
    with pytest.raises(ConfigError, match="not a torch device"):
        check_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            prepare("test-fake", fake_raw, tmp_path / "x.h5", device="cuda")
    with pytest.raises(ConfigError, match="drop --workers 2"):
        prepare("test-fake", fake_raw, tmp_path / "x.h5", device="cpu", workers=2)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_nvjpeg_and_the_cuda_warp_match_the_cpu_path(frames):
    cpu, gpu = process_chunk(_job(frames, size=256)), process_chunk(_job(frames, "cuda", size=256))
    assert gpu.rows.face.all()
    for a, b in zip(_faces(cpu), _faces(gpu)):
        assert np.abs(a - b).mean() < TOLERANCE
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(cpu.rows, name), getattr(gpu.rows, name), err_msg=name)
