"""Shared fixtures: tiny prepared stores (docs/store-schema.md, schema 1) written in a blink.

`write_tiny_store` draws BP4D-protocol subjects (two from each part, so every fold of
bp4d-3fold@v1 has training, validation and test subjects) and renders each frame as gray noise
plus one grating per active AU. AU k has its own period and orientation (horizontal or
vertical stripes, so a horizontal flip keeps it), so the labels can be learnt from the pixels
by a tiny CNN under crops and flips. About 2% of labels are unknown (-1).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from austack.faces.align import alignment_params
from austack.protocols import load_protocol
from austack.store import FrameRows, StoreSettings, StoreWriter, encode_image

PROTOCOL = "bp4d-3fold@v1"
PERIODS = (4, 6, 8, 11, 16, 22)          # pixels; with 2 orientations: 12 distinct patterns


def _grating(k: int, size: int, phase: float) -> np.ndarray:
    period, vertical = PERIODS[k % len(PERIODS)], k >= len(PERIODS)
    t = np.arange(size, dtype=np.float32)
    wave = np.sin(2 * np.pi * t / period + phase)
    return np.tile(wave[None, :], (size, 1)) if vertical else np.tile(wave[:, None], (1, size))


def write_store_rows(path: str | Path, images: np.ndarray, labels: np.ndarray, subjects: list[str], *,
                     encoding: str = "raw", complete: bool = True, protocol: str = PROTOCOL) -> Path:
    """Write aligned `images` (N, S, S, 3) with their labels through austack's own StoreWriter,
    one session per subject, so every test store follows the real schema."""
    proto = load_protocol(protocol)
    size = images.shape[1]
    settings = StoreSettings(dataset=proto.dataset, aus=proto.aus, protocol=proto.id, protocol_hash=proto.hash,
                             alignment=alignment_params(size, 2.9), landmark_source="shipped",
                             image_encoding=encoding)
    writer = StoreWriter(path, settings, force=True)
    subjects = np.asarray(subjects)
    for s in dict.fromkeys(subjects.tolist()):
        idx = np.flatnonzero(subjects == s)
        n = len(idx)
        writer.begin_session(s, "T1")
        writer.append(FrameRows(images=[encode_image(images[i], encoding) for i in idx], labels=labels[idx],
                                landmarks=np.full((n, 49, 2), size / 2, np.float32),
                                matrix=np.tile(np.eye(2, 3, dtype=np.float32), (n, 1, 1)),
                                face=np.ones(n, np.uint8), landmark_origin=np.ones(n, np.uint8),
                                frame=np.arange(n, dtype=np.int32), split=[""] * n))
        writer.end_session()
    if complete:
        writer.finish(source={"root": "tests/conftest.py"})
    else:
        writer.close()
    return Path(path)


def write_tiny_store(path: str | Path, *, per_subject: int = 24, size: int = 48, per_part: int = 2,
                     seed: int = 0, invert_subjects: tuple[str, ...] = ()) -> Path:
    """Write a complete raw-encoded store at `path` and return it.

    `invert_subjects`: subjects whose labels are written inverted (1 <-> 0) while their images
    stay as rendered, to check that a split's labels do not influence another split's results.
    """
    path = Path(path)
    proto = load_protocol(PROTOCOL)
    n_au = len(proto.aus)
    rng = np.random.default_rng(seed)
    subjects = [s for part in sorted(proto.parts) for s in proto.parts[part][:per_part]]
    rates = rng.uniform(0.25, 0.6, size=n_au)
    images, labels, subj = [], [], []
    for s in subjects:
        y = (rng.random((per_subject, n_au)) < rates).astype(np.int8)
        for img_labels in y:
            img = 128 + 12 * rng.standard_normal((size, size, 3)).astype(np.float32)
            for k in np.flatnonzero(img_labels):
                img += 45 * _grating(int(k), size, rng.uniform(0, 2 * np.pi))[:, :, None]
            images.append(np.clip(img, 0, 255).astype(np.uint8))
        y = np.where(rng.random(y.shape) < 0.02, -1, y).astype(np.int8)
        if s in invert_subjects:
            y = np.where(y >= 0, 1 - y, y).astype(np.int8)
        labels.append(y)
        subj += [s] * per_subject
    write_store_rows(path, np.stack(images), np.concatenate(labels), subj, encoding="raw")
    return path


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    """A 6-subject, 144-frame, 48 px store on bp4d-3fold@v1 with learnable labels (read-only)."""
    return write_tiny_store(tmp_path_factory.mktemp("tiny_store") / "tiny.h5")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's runs: results repeat exactly for a fixed thread count,
    and the machine's two cores are shared by the test processes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def mount_tmpfs(folder: Path, options: str) -> bool:
    """Mount a small tmpfs at `folder` (root only): a real full or read-only filesystem."""
    import os
    import shutil
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.fixture
def read_only(tmp_path):
    """A folder nothing can be written to: a read-only tmpfs as root (root ignores permission
    bits), mode 0555 otherwise; skipped where neither holds."""
    import os
    import subprocess

    folder = tmp_path / "ro"
    if not mount_tmpfs(folder, "ro,size=1m"):
        if os.geteuid() == 0:
            pytest.skip("root ignores permissions and cannot mount here")
        folder.chmod(0o555)
    yield folder
    if os.geteuid() == 0:
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)
    folder.chmod(0o755)


@pytest.fixture(scope="module")
def fake_raw(tmp_path_factory):
    """A raw layout of the `test-fake` reader: 3 subjects x 2 sessions x 4 frames (the fault,
    Dask and shard tests each prepare it their way)."""
    import _prepare_fake

    root = tmp_path_factory.mktemp("fake") / "raw"
    _prepare_fake.write_fake_raw(root, subjects=("S1", "S2", "S3"), frames=4)
    return root


@pytest.fixture(scope="module")
def raw(fake_raw):
    """`fake_raw` under the name the fault, Dask and shard tests use (a module may define its own)."""
    return fake_raw


def same_contents(a: Path, b: Path, columns) -> None:
    """Images, the named columns and the identity of two stores equal, row for row."""
    import h5py

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert [bytes(r) for r in fa["images"][:]] == [bytes(r) for r in fb["images"][:]]
        for name in columns:
            np.testing.assert_array_equal(fa[name][:], fb[name][:], err_msg=name)
        assert fa.attrs["identity"] == fb.attrs["identity"]


def wait_for(proc, word: str) -> None:
    """Read a child's stdout until it prints the line `word`."""
    for line in proc.stdout:
        if line.strip() == word:
            return
    raise AssertionError(f"the run ended before printing {word!r}")


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """austack's cache (image checks) in a folder of the test session, for child processes too."""
    import os

    os.environ["AUSTACK_CACHE_DIR"] = str(tmp_path_factory.mktemp("austack-cache"))
    yield
