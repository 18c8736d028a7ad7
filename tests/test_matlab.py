"""MATLAB v7.3 cell arrays: our writer, the way public BP4D code reads `fit/pred`, and back."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io.matlab

from austack.datasets._matlab import USERBLOCK, is_v73, read_v73_cells, write_v73_cells
from austack.errors import RawDataError


@pytest.fixture
def cells():
    rng = np.random.default_rng(0)
    return [rng.uniform(1, 640, size=(49, 2)), None, rng.uniform(1, 640, size=(49, 2))]


def test_round_trip(tmp_path, cells):
    path = tmp_path / "F001_T1.mat"
    write_v73_cells(path, "fit/pred", cells)
    back = read_v73_cells(path, "fit/pred")
    assert len(back) == 3 and back[1] is None
    for ours, theirs in ((back[0], cells[0]), (back[2], cells[2])):
        assert ours.shape == (49, 2) and ours.dtype == np.float64
        np.testing.assert_array_equal(ours, theirs)


def test_written_as_matlab_lays_it_out(tmp_path, cells):
    path = tmp_path / "F001_T1.mat"
    write_v73_cells(path, "fit/pred", cells)
    assert is_v73(path)
    assert scipy.io.matlab.matfile_version(str(path)) == (2, 0)   # scipy sees a v7.3 header
    with open(path, "rb") as f:
        assert f.read(19) == b"MATLAB 7.3 MAT-file"
    with h5py.File(path, "r") as f:
        assert f.userblock_size == USERBLOCK
        assert f["fit"].attrs["MATLAB_class"] == b"struct"
        pred = f["fit/pred"]
        assert pred.attrs["MATLAB_class"] == b"cell"
        assert pred.shape == (3, 1) and pred.dtype == h5py.ref_dtype
        # How public code reads BP4D landmarks: dereference, then transpose the stored 2x49.
        first = f[pred[0][0]]
        assert first.name.startswith("/#refs#/") and first.attrs["MATLAB_class"] == b"double"
        assert first.shape == (2, 49)
        np.testing.assert_array_equal(first[()].T, cells[0])
        assert f[pred[1][0]].attrs["MATLAB_empty"] == 1


def test_reads_a_file_written_without_our_writer(tmp_path):
    """A v7.3 layout built by hand (no user block, other #refs# names, (1, T) refs) reads the same."""
    path = tmp_path / "other.mat"
    mats = [np.arange(98, dtype=np.float64).reshape(49, 2) + k for k in range(4)]
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        stored = [refs.create_dataset(f"x{k}", data=m.T) for k, m in enumerate(mats)]
        pred = np.empty((1, 4), dtype=h5py.ref_dtype)
        for k, d in enumerate(stored):
            pred[0, k] = d.ref
        f.create_group("fit").create_dataset("pred", data=pred)
    assert not is_v73(path)
    back = read_v73_cells(path, "fit/pred")
    for ours, theirs in zip(back, mats, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_not_hdf5_names_the_file(tmp_path):
    path = tmp_path / "broken.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file, not HDF5 at all")
    with pytest.raises(RawDataError, match=r"broken\.mat: not a readable MATLAB v7\.3"):
        read_v73_cells(path, "fit/pred")


def test_missing_variable_and_non_cell(tmp_path):
    path = tmp_path / "plain.mat"
    with h5py.File(path, "w") as f:
        f.create_dataset("pts", data=np.zeros((2, 49)))
    with pytest.raises(RawDataError, match=r"plain\.mat: no variable 'fit/pred' \(has pts\)"):
        read_v73_cells(path, "fit/pred")
    with pytest.raises(RawDataError, match="not a cell array of object references"):
        read_v73_cells(path, "pts")
