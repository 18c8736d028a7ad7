"""AUStoreDataset, make_loader and BatchAugment on small stores written here per docs/store-schema.md."""
from __future__ import annotations

import io
import pickle

import h5py
import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

from austack.data import AUStoreDataset, BatchAugment, make_loader
from austack.data import batch_ops as ops

import colour_oracles as oracles
from austack.errors import ProtocolError, StoreError
from austack.protocols import load_protocol
from conftest import write_store_rows

PROTOCOL = "bp4d-3fold@v1"
# two subjects from each BP4D part, so every fold has train, val and test subjects
SUBJECTS = ("F001", "M007", "M011", "F003", "F007", "F015")
FRAMES = 5
SIZE = 32


def asymmetric_image(seed: int, size: int = SIZE) -> np.ndarray:
    """RGB uint8 with a left/right gradient and noise: no symmetry for a flip to hide in."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, size, dtype=np.float32)[None, :, None]
    img = ramp + rng.integers(0, 55, (size, size, 3))
    return img.astype(np.uint8)


def write_store(path, encoding: str = "jpeg", complete: bool = True, seed: int = 0):
    proto = load_protocol(PROTOCOL)
    n = len(SUBJECTS) * FRAMES
    rng = np.random.default_rng(seed)
    images = np.stack([asymmetric_image(i) for i in range(n)])
    labels = rng.integers(-1, 2, (n, len(proto.aus))).astype(np.int8)
    write_store_rows(path, images, labels, np.repeat(SUBJECTS, FRAMES).tolist(), encoding=encoding,
                     complete=complete, protocol=PROTOCOL)
    return images, labels


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "bp4d.h5"
    images, labels = write_store(path)
    return path, images, labels


def store_subjects(path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["subject"].asstr()[:]


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_splits_never_leak_test_subjects(store, fold):
    path, _, _ = store
    proto = load_protocol(PROTOCOL)
    subjects = store_subjects(path)
    test_part = set(proto.parts[proto.fold(fold).test_parts[0]])
    seen = {}
    for split in ("train", "val", "test"):
        ds = AUStoreDataset(path, fold=fold, split=split)
        seen[split] = set(subjects[ds.rows])
        assert seen[split] == set(ds.subjects)
    assert seen["test"] == test_part & set(SUBJECTS)
    assert not (seen["train"] | seen["val"]) & test_part
    assert not seen["train"] & seen["val"] and len(seen["val"]) == 1   # 15 % of 4, at least one
    assert seen["train"] | seen["val"] | seen["test"] == set(SUBJECTS)


def test_items_pass_labels_and_unknowns_through(store):
    path, images, labels = store
    ds = AUStoreDataset(path, split="test")
    assert (labels[ds.rows] == -1).any()
    for i in range(len(ds)):
        img, lab, row = ds[i]
        assert img.dtype == torch.uint8 and img.shape == (3, SIZE, SIZE) and lab.dtype == torch.int8
        assert np.array_equal(lab.numpy(), labels[row])
        with h5py.File(path, "r") as f:   # an independent decoder of the stored bytes
            expected = np.asarray(Image.open(io.BytesIO(f["images"][row].tobytes())).convert("RGB"))
        assert np.abs(img.permute(1, 2, 0).numpy().astype(int) - expected).max() <= 2


def test_raw_images_are_returned_exactly(tmp_path):
    images, _ = write_store(tmp_path / "raw.h5", encoding="raw")
    ds = AUStoreDataset(tmp_path / "raw.h5", split="train")
    img, _, row = ds[2]
    assert np.array_equal(img.permute(1, 2, 0).numpy(), images[row])


def test_store_opens_lazily_and_pickles_before_and_after_use(store):
    path, _, _ = store
    ds = AUStoreDataset(path)
    assert ds._store is None
    fresh = pickle.loads(pickle.dumps(ds))
    first = ds[0]
    assert ds._store is not None
    again = pickle.loads(pickle.dumps(ds))
    assert again._store is None
    for other in (fresh, again):
        img, lab, row = other[0]
        assert torch.equal(img, first[0]) and torch.equal(lab, first[1]) and row == first[2]


def test_au_rates_count_known_labels_only(store):
    path, _, labels = store
    ds = AUStoreDataset(path, split="train")
    sel = labels[ds.rows]
    expected = [(c == 1).sum() / (c >= 0).sum() for c in sel.T]
    assert np.allclose(ds.au_rates(), expected)


def test_limit_keeps_evenly_spaced_rows(store):
    path, _, _ = store
    full = AUStoreDataset(path, split="train")
    small = AUStoreDataset(path, split="train", limit=3)
    assert len(small) == 3 and set(small.rows) <= set(full.rows)
    assert small.rows[0] == full.rows[0] and small.rows[-1] == full.rows[-1]
    assert "limited" in repr(small)


def test_bad_inputs_fail_with_the_path_and_the_fix(tmp_path, store):
    with pytest.raises(StoreError, match="does not exist; create it with `austack prepare`"):
        AUStoreDataset(tmp_path / "missing.h5")
    write_store(tmp_path / "partial.h5", complete=False)
    with pytest.raises(StoreError, match="interrupted run: rerun `austack prepare` with --resume"):
        AUStoreDataset(tmp_path / "partial.h5")
    with pytest.raises(ProtocolError, match="unknown split 'dev'"):
        AUStoreDataset(store[0], split="dev")
    with pytest.raises(ProtocolError, match="has no fold 7"):
        AUStoreDataset(store[0], fold=7)


def test_loader_is_seeded_and_workers_open_their_own_handle(store):
    path, _, _ = store
    ds = AUStoreDataset(path)
    order = lambda seed, workers: torch.cat([rows for _, _, rows in make_loader(ds, 4, True, workers, seed)])
    assert torch.equal(order(3, 0), order(3, 0))
    assert not torch.equal(order(3, 0), order(4, 0))
    ds = AUStoreDataset(path)
    images, labels, rows = next(iter(make_loader(ds, 4, False, workers=1, seed=0)))
    assert images.shape == (4, 3, SIZE, SIZE) and labels.dtype == torch.int8
    assert torch.equal(rows, torch.as_tensor(ds.rows[:4]))
    assert ds._store is None      # the worker opened the store, not the main process


# ---------------------------------------------------------------- augmentation

def batch(n: int = 4, size: int = SIZE) -> torch.Tensor:
    return torch.stack([torch.from_numpy(asymmetric_image(i, size)).permute(2, 0, 1) for i in range(n)])


PLAIN = dict(jitter_p=0.0, gray_p=0.0, blur_p=0.0, mean=(0, 0, 0), std=(1, 1, 1))


def test_views_have_the_right_shape_dtype_and_range():
    x = batch()
    v1, v2 = BatchAugment(crop=24, seed=0, mean=(0, 0, 0), std=(1, 1, 1))(x)
    for v in (v1, v2):
        assert v.shape == (4, 3, 24, 24) and v.dtype == torch.float32
        assert v.min() >= -1e-5 and v.max() <= 1 + 1e-5
    assert not torch.equal(v1, v2)
    one = BatchAugment(crop=24, views=1, seed=0)(x)
    assert isinstance(one, torch.Tensor) and one.shape == (4, 3, 24, 24)


def test_same_seed_same_views_and_eval_is_a_deterministic_centre_crop():
    x = batch()
    a, b = BatchAugment(crop=24, seed=5), BatchAugment(crop=24, seed=5)
    for va, vb in zip(a(x), b(x)):
        assert torch.equal(va, vb)
    assert not torch.equal(a(x)[0], BatchAugment(crop=24, seed=6)(x)[0])
    ev = BatchAugment(crop=24, seed=0).eval()
    out = ev(x)
    assert torch.equal(out, ev(x))
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    assert torch.allclose(out[0], (x[0, :, 4:28, 4:28] / 255.0 - mean) / std, atol=1e-6)


@pytest.mark.parametrize("flip_p", [0.0, 1.0])
def test_flip_really_flips(flip_p):
    x = batch()
    v = BatchAugment(crop=SIZE, views=1, flip_p=flip_p, seed=0, **PLAIN)(x)
    expected = x.flip(-1) if flip_p else x
    assert torch.allclose(v, expected / 255.0)
    assert not torch.allclose(x.flip(-1).float(), x.float())


def test_crops_are_windows_of_their_own_source_image():
    x = batch(3, 12)
    windows = ops.crop_windows(x, 5)
    source, top, left = torch.tensor([2, 0, 1, 2]), torch.tensor([0, 7, 3, 1]), torch.tensor([7, 0, 2, 4])
    flip = torch.tensor([False, True, False, True])
    out = ops.crop_flip(windows, source, top, left, flip)
    for i in range(4):
        crop = x[source[i], :, top[i]:top[i] + 5, left[i]:left[i] + 5]
        assert torch.equal(out[i], crop.flip(-1) if flip[i] else crop)


def test_grayscale_gives_equal_channels():
    v = BatchAugment(crop=24, views=1, seed=0, **{**PLAIN, "gray_p": 1.0})(batch())
    assert torch.allclose(v[:, 0], v[:, 1]) and torch.allclose(v[:, 1], v[:, 2])
    normed = BatchAugment(crop=24, views=1, seed=0, jitter_p=0, gray_p=1.0, blur_p=0)(batch())
    raw = normed * torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    assert torch.allclose(raw[:, 0], raw[:, 2], atol=1e-5)


def test_blur_keeps_the_mean_and_smooths():
    x = batch()
    sharp = BatchAugment(crop=SIZE, views=1, seed=0, **PLAIN)(x)
    soft = BatchAugment(crop=SIZE, views=1, seed=0, **{**PLAIN, "blur_p": 1.0, "blur_sigma": (1.5, 2.0)})(x)
    assert torch.allclose(sharp.mean(), soft.mean(), atol=1e-2)
    assert soft.diff(dim=-1).abs().mean() < 0.5 * sharp.diff(dim=-1).abs().mean()


def test_batch_ops_match_torchvision_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, generator=g)
    f = torch.tensor([0.6, 1.0, 1.3, 1.4])
    for ours, theirs in ((oracles.brightness_, TF.adjust_brightness), (oracles.contrast_, TF.adjust_contrast),
                         (oracles.saturation_, TF.adjust_saturation)):
        ref = torch.stack([theirs(xi, float(fi)) for xi, fi in zip(x, f)])
        assert torch.allclose(ours(x.clone(), f), ref, atol=1e-5), ours.__name__
    shift = torch.tensor([-0.1, 0.0, 0.05, 0.5])
    ref = torch.stack([TF.adjust_hue(xi, float(s)) for xi, s in zip(x, shift)])
    assert torch.allclose(oracles.hue_(x.clone(), shift), ref, atol=1e-5)
    sigma = torch.tensor([0.3, 1.0, 2.0, 0.1])
    ref = torch.stack([TF.gaussian_blur(xi, [7, 7], [float(s)] * 2) for xi, s in zip(x, sigma)])
    assert torch.allclose(ops.blur(x, ops.gaussian_kernels(sigma, 3)), ref, atol=1e-5)


def test_augment_rejects_what_it_cannot_crop():
    with pytest.raises(Exception, match="uint8 images"):
        BatchAugment(crop=8)(torch.rand(2, 3, 16, 16))
    with pytest.raises(Exception, match="at least 40 px"):
        BatchAugment(crop=40)(batch())


def test_fused_colour_map_equals_the_sequential_operations():
    """Brightness, contrast, saturation and grayscale are linear: one affine map per view must
    equal applying them one by one (no clamping happens at these factors)."""
    torch.manual_seed(0)
    x = torch.rand(6, 3, 20, 24) * 0.5 + 0.25
    b, c, s = (torch.rand(6) * 0.3 + 0.85 for _ in range(3))
    gray = torch.tensor([False, True, False, True, False, False])
    order = [2, 0, 1, 3]
    a, o = ops.colour_transforms(order, b, c, s, torch.zeros(6), gray, x.mean(dim=(2, 3)))
    fused = (torch.baddbmm(o.unsqueeze(2), a, x.view(6, 3, -1))).view_as(x)
    ref = x.clone()
    for i in order:
        [oracles.brightness_, oracles.contrast_, oracles.saturation_, lambda y, f: y][i](ref, [b, c, s, None][i])
    ref[gray] = oracles.grey(ref[gray]).expand(-1, 3, -1, -1)
    assert torch.allclose(fused, ref, atol=1e-5)


def test_hue_rotation_keeps_luma_and_turns_colour():
    x = torch.rand(4, 3, 8, 8)
    shift = torch.tensor([0.0, 0.1, -0.1, 0.5])
    ones = torch.ones(4)
    a, o = ops.colour_transforms([3], ones, ones, ones, shift, torch.zeros(4, dtype=torch.bool), x.mean(dim=(2, 3)))
    y = torch.baddbmm(o.unsqueeze(2), a, x.view(4, 3, -1)).view_as(x)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert torch.allclose((y * luma).sum(1), (x * luma).sum(1), atol=1e-5)
    assert torch.allclose(y[0], x[0], atol=1e-5) and not torch.allclose(y[1], x[1], atol=1e-2)


def test_cpu_blur_agrees_with_the_convolution_path():
    """float32 on the CPU goes through OpenCV; other dtypes and GPUs through grouped convolutions."""
    g = torch.Generator().manual_seed(4)
    x = torch.rand(5, 3, 40, 33, generator=g)
    kernels = ops.gaussian_kernels(torch.rand(5, generator=g) * 1.9 + 0.1, 8)
    fast = ops.blur(x, kernels)
    conv = ops.blur(x.double(), kernels.double())
    assert fast.dtype == torch.float32 and torch.allclose(fast.double(), conv, atol=1e-6)
