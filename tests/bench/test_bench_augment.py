"""Throughput of the two-view batch augmentation against a per-image torchvision pipeline,
and of the store loader, on one CPU thread.

    python -m pytest tests/bench/test_bench_augment.py --benchmark-enable --benchmark-group-by=group

Each augmentation benchmark processes BATCH source images of 256 px into two 224 px views, so
images/s = BATCH / mean time. Two baselines: the torchvision transforms as listed in the AUNCE
recipe (its GaussianBlur is a dense 23 x 23 convolution per image), and the same pipeline with
PIL's ImageFilter blur (the faster per-image practice of SimCLR/MoCo code); report against both.
Without --benchmark-enable (the project default) each runs once as a smoke test.
"""
from __future__ import annotations


import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter
from skimage import data

from austack.data import AUStoreDataset, BatchAugment
from austack.protocols import load_protocol
from conftest import write_store_rows

BATCH = 32
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)


class PILGaussianBlur:
    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, img):
        return img.filter(ImageFilter.GaussianBlur(radius=float(np.random.uniform(*self.sigma))))


def per_image_pipeline(blur) -> T.Compose:
    return T.Compose([T.RandomCrop(224), T.RandomHorizontalFlip(),
                      T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(0.2),
                      T.RandomApply([blur], p=0.5), T.ToTensor(), T.Normalize(MEAN, STD)])


@pytest.mark.benchmark(group="augment")
def test_bench_batch_augment(benchmark, face):
    images = torch.from_numpy(face).permute(2, 0, 1).contiguous().expand(BATCH, -1, -1, -1).contiguous()
    aug = BatchAugment(crop=224, views=2, seed=0)
    v1, v2 = benchmark(aug, images)
    assert v1.shape == v2.shape == (BATCH, 3, 224, 224)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("batch", [BATCH, 256])
@pytest.mark.benchmark(group="augment-cuda")
def test_bench_batch_augment_cuda(benchmark, face, batch):
    """The same two-view augmentation on the GPU, from uint8 images already there (the trainer
    copies the uint8 batch over first); one synchronisation per call, for the timing."""
    images = torch.from_numpy(face).permute(2, 0, 1).contiguous().expand(batch, -1, -1, -1).contiguous().cuda()
    aug = BatchAugment(crop=224, views=2, seed=0).cuda()

    def run():
        out = aug(images)
        torch.cuda.synchronize()
        return out

    run()
    v1, v2 = benchmark.pedantic(run, rounds=20, warmup_rounds=2, iterations=1)
    if benchmark.stats is not None:
        benchmark.extra_info["source_images_per_s"] = round(batch / benchmark.stats.stats.median, 1)
    assert v1.shape == v2.shape == (batch, 3, 224, 224) and v1.is_cuda


@pytest.mark.parametrize("blur", ["torchvision", "pil"])
@pytest.mark.benchmark(group="augment")
def test_bench_per_image_baseline(benchmark, face, blur):
    tf = per_image_pipeline(T.GaussianBlur(23, (0.1, 2.0)) if blur == "torchvision" else PILGaussianBlur())
    img = Image.fromarray(face)

    def run():
        return [(tf(img), tf(img)) for _ in range(BATCH)]

    out = benchmark.pedantic(run, rounds=3 if blur == "torchvision" else 5, iterations=1)
    assert out[0][0].shape == (3, 224, 224)


@pytest.fixture(scope="module")
def face_store(tmp_path_factory, face):
    """256 JPEG frames (quality 95, the prepare default size) of the astronaut face, jittered."""
    path = tmp_path_factory.mktemp("bench") / "bp4d.h5"
    proto = load_protocol("bp4d-3fold@v1")
    n, rng = 256, np.random.default_rng(0)
    frames = np.stack([np.clip(face.astype(int) + rng.integers(-8, 9, face.shape), 0, 255).astype(np.uint8)
                       for _ in range(n)])
    labels = rng.integers(-1, 2, (n, len(proto.aus))).astype(np.int8)
    write_store_rows(path, frames, labels, ["F001"] * n, encoding="jpeg")
    return path


@pytest.mark.benchmark(group="loader")
def test_bench_store_decode(benchmark, face_store):
    ds = AUStoreDataset(face_store, split="train")

    def read_all():
        return [ds[i][0] for i in range(len(ds))]

    out = benchmark.pedantic(read_all, rounds=3, iterations=1)
    assert len(out) == 256 and out[0].shape == (3, 256, 256)
