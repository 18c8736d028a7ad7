"""The HDF5 store: round trip, require semantics, incomplete stores, verify, subsets, reads."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from austack.faces.align import alignment_params
from austack.errors import StoreError, StoreExistsError, StoreMismatchError
from austack.protocols import load_protocol
from austack.store import (FrameRows, StoreSettings, StoreWriter, check_store, encode_image, info, open_store,
                           partial_path, store_identity, verify)

PROTO = load_protocol("bp4d-3fold@v1")
SIZE = 32
SUBJECTS = [("F001", "T1"), ("F001", "T2"), ("M011", "T1"), ("F007", "T1"), ("M009", "T3")]


def settings(encoding="jpeg", size=SIZE, aus=PROTO.aus) -> StoreSettings:
    return StoreSettings(dataset="bp4d", aus=aus, protocol=PROTO.id, protocol_hash=PROTO.hash,
                         alignment=alignment_params(size, 2.9), landmark_source="shipped", image_encoding=encoding)


def rows(n: int, seed: int, encoding: str) -> tuple[FrameRows, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(n)]
    face = np.ones(n, np.uint8)
    face[0] = 0
    lm = rng.uniform(0, SIZE, (n, 49, 2)).astype(np.float32)
    lm[0] = np.nan
    return FrameRows(images=[encode_image(i, encoding) for i in imgs],
                     labels=rng.integers(-1, 2, (n, len(PROTO.aus))).astype(np.int8),
                     landmarks=lm, matrix=rng.normal(size=(n, 2, 3)).astype(np.float32), face=face,
                     landmark_origin=face.copy(), frame=np.arange(100, 100 + n, dtype=np.int32),
                     split=[""] * n), imgs


def write(path, encoding="jpeg", sessions=SUBJECTS, n=4, finish=True) -> list[FrameRows]:
    written = []
    w = StoreWriter(path, settings(encoding))
    for k, (subject, session) in enumerate(sessions):
        r, _ = rows(n, k, encoding)
        w.begin_session(subject, session)
        w.append(r)
        w.end_session()
        written.append(r)
    if finish:
        w.finish(source={"root": "test"})
    else:
        w.close()
    return written


@pytest.mark.parametrize("encoding", ["jpeg", "raw"])
def test_round_trip(tmp_path, encoding):
    path = tmp_path / "s.h5"
    written = write(path, encoding)
    assert not partial_path(path).exists()
    with open_store(path) as s:
        assert len(s) == 4 * len(SUBJECTS) and s.aus == PROTO.aus and s.size == SIZE
        np.testing.assert_array_equal(s.labels, np.concatenate([r.labels for r in written]))
        np.testing.assert_array_equal(s.frames, np.tile(np.arange(100, 104), len(SUBJECTS)))
        assert s.subjects.tolist() == [a for a, _ in SUBJECTS for _ in range(4)]
        assert s.attrs["complete"] is True and s.attrs["alignment"]["size"] == SIZE
        for i in (0, 5, 19):
            stored = written[i // 4].images[i % 4]
            np.testing.assert_array_equal(s.image_bytes(i), stored)
            assert s.image(i).shape == (SIZE, SIZE, 3)
        if encoding == "raw":
            np.testing.assert_array_equal(s.image(5), written[1].images[1])
    assert verify(path).ok


def test_subsets_follow_the_protocol(tmp_path):
    path = tmp_path / "s.h5"
    write(path)
    with open_store(path) as s:
        for fold in (1, 2, 3):
            assigned = PROTO.assign(fold, sorted(set(s.subjects)))
            seen = []
            for split in ("train", "val", "test"):
                idx = s.get_subset(fold=fold, split=split)
                assert set(s.subjects[idx]) == {u for u, v in assigned.items() if v == split}
                seen += idx.tolist()
            assert sorted(seen) == list(range(len(s)))   # every subject is in some part here
        assert set(s.subjects[s.get_subset(fold=1, split="test")]) == {"F007", "M009"}
        with pytest.raises(Exception, match="unknown split"):
            s.get_subset(fold=1, split="dev")


def test_existing_store_needs_force(tmp_path):
    path = tmp_path / "s.h5"
    write(path)
    with pytest.raises(StoreExistsError, match="already exists; pass --force"):
        StoreWriter(path, settings())
    write_forced = StoreWriter(path, settings(), force=True)
    write_forced.close()
    with open_store(path) as s:  # the old store stays until the new one is renamed over it
        assert len(s) == 20


def test_resume_with_other_settings_says_existing_vs_new(tmp_path):
    path = tmp_path / "s.h5"
    write(path, finish=False)
    with pytest.raises(StoreMismatchError, match=r"alignment: existing .*'size': 32.* vs new .*'size': 64"):
        StoreWriter(path, settings(size=64), resume=True)
    with pytest.raises(StoreMismatchError, match=r"aus: existing \(1, 2, 4.*\) vs new \(1, 2\)"):
        StoreWriter(path, settings(aus=(1, 2)), resume=True)
    with pytest.raises(StoreMismatchError, match="image_encoding: existing 'jpeg' vs new 'raw'"):
        StoreWriter(path, settings("raw"), resume=True)
    with pytest.raises(StoreExistsError, match="--resume to continue it or --force"):
        StoreWriter(path, settings())


def test_incomplete_store_is_refused_and_resumes(tmp_path):
    path = tmp_path / "s.h5"
    write(path, sessions=SUBJECTS[:2], finish=False)
    with pytest.raises(StoreError, match="interrupted run: rerun `austack prepare` with --resume"):
        open_store(path)
    partial_path(path).rename(path)   # even renamed by hand, it is no store
    with pytest.raises(StoreError, match="interrupted run.*incomplete.*--resume"):
        open_store(path)
    path.rename(partial_path(path))
    w = StoreWriter(path, settings(), resume=True)
    assert w.done() == SUBJECTS[:2] and w.rows == 8
    # rows of a session that never ended are cut on resume
    r, _ = rows(3, 9, "jpeg")
    w.begin_session(*SUBJECTS[2])
    w.append(r)
    w.close()
    w = StoreWriter(path, settings(), resume=True)
    assert w.rows == 8
    w.finish(source={})
    assert verify(path).ok


def test_verify_catches_a_corrupted_byte_and_a_duplicate_frame(tmp_path):
    path = tmp_path / "s.h5"
    write(path, "raw")
    with h5py.File(path, "r+") as f:
        img = f["images"][6]
        img[3, 3, 1] ^= 0x10
        f["images"][6] = img
    report = verify(path)
    assert not report.ok
    assert any("F001/T2" in p and "checksum" in p for p in report.problems), report.problems
    path2 = tmp_path / "d.h5"
    write(path2)
    with h5py.File(path2, "r+") as f:
        f["frame"][10] = f["frame"][8]
        f["labels"][0, 0] = 7
    problems = verify(path2).problems
    assert any("M011/T1" in p and "duplicate frame(s) 100" in p for p in problems), problems
    assert any("labels outside -1..1 in 1 rows" in p for p in problems), problems


def test_info_counts_and_rates(tmp_path):
    path = tmp_path / "s.h5"
    written = write(path)
    s = info(path)
    assert s.frames == 20 and s.sessions == 5 and s.faces == 15
    f001 = next(g for g in s.subjects if g.name == "F001")
    labels = np.concatenate([r.labels for r in written[:2]])
    known = labels >= 0
    assert f001.units == 2 and f001.frames == 8
    np.testing.assert_allclose(f001.rates, (labels == 1).sum(0) / np.maximum(known.sum(0), 1))
    test1 = next(g for g in s.folds if g.name == "fold 1 test")
    assert test1.units == 2 and test1.frames == 8


@pytest.mark.parametrize("encoding", ["jpeg", "raw"])
def test_bench_store_random_read(benchmark, tmp_path, encoding):
    path = tmp_path / "s.h5"
    write(path, encoding)
    rng = np.random.default_rng(0)
    with open_store(path) as s:
        order = rng.permutation(len(s))
        benchmark(lambda: [s.image(i) for i in order])


def test_equal_length_jpeg_rows(tmp_path):
    """Grey no-face frames encode to identical JPEGs; numpy must not stack them into 2-D."""
    path = tmp_path / "g.h5"
    r, _ = rows(3, 0, "jpeg")
    r.images = [encode_image(np.full((SIZE, SIZE, 3), 128, np.uint8), "jpeg")] * 3
    w = StoreWriter(path, settings())
    w.begin_session("F001", "T1")
    w.append(r)
    w.end_session()
    w.finish(source={})
    with open_store(path) as s:
        assert (s.image(2) == 128).all()


def _damaged(tmp_path, name: str, edit) -> list[str]:
    path = tmp_path / f"{name}.h5"
    write(path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return verify(path).problems


@pytest.mark.parametrize("name, edit, column", [
    ("label", lambda f: f["labels"].__setitem__((9, 2), int(f["labels"][9, 2] == 0)), "labels"),  # in range
    ("landmark", lambda f: f["landmarks"].__setitem__((9, 3, 0), 8.6e19), "landmarks"),
    ("frame", lambda f: f["frame"].__setitem__(9, 7), "frame"),
    ("subject", lambda f: f["subject"].__setitem__(9, "F002"), "subject"),
    ("matrix", lambda f: f["matrix"].__setitem__((9, 0, 0), 2.0), "matrix"),
])
def test_verify_names_the_column_and_session_of_an_edit(tmp_path, name, edit, column):
    problems = _damaged(tmp_path, name, edit)
    assert any("M011/T1" in p and f"column {column!r} checksum" in p for p in problems), problems


def test_verify_catches_a_jpeg_byte_flip_and_a_far_landmark(tmp_path):
    def flip(f):
        row = f["images"][13]
        row[len(row) // 2] ^= 0x01
        f["images"][13] = row

    problems = _damaged(tmp_path, "img", flip)
    assert any("F007/T1" in p and "column 'images' checksum" in p for p in problems), problems
    problems = _damaged(tmp_path, "far", lambda f: f["landmarks"].__setitem__((9, 3, 0), 8.6e19))
    assert any("landmarks not finite or outside" in p and "M011/T1" in p for p in problems), problems


def test_check_store_is_the_cheap_check_before_training(tmp_path):
    path = tmp_path / "ok.h5"
    write(path)
    check_store(path)
    with h5py.File(path, "r+") as f:
        f["labels"][5, 0] = int(f["labels"][5, 0] == 0)   # still in -1..1: only the digest sees it
    with pytest.raises(StoreError, match=r"failed its check: session F001/T2 .*column 'labels'.*austack verify"):
        check_store(path)


def test_identity_covers_one_label_and_is_recorded(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    write(a)
    write(b)
    assert store_identity(a) == store_identity(b) and a.read_bytes() == b.read_bytes()   # deterministic bytes
    written = write(tmp_path / "c.h5")
    w = StoreWriter(tmp_path / "d.h5", settings())   # the same rows but one label
    for k, (subject, session) in enumerate(SUBJECTS):
        r = written[k]
        if k == 0:
            r.labels = r.labels.copy()
            r.labels[0, 0] = int(r.labels[0, 0] == 0)
        w.begin_session(subject, session)
        w.append(r)
        w.end_session()
    w.finish(source={"root": "test"})
    assert store_identity(tmp_path / "d.h5") != store_identity(a)
    with open_store(a) as s:
        assert s.identity == store_identity(a) and s.versions["h5py"] == h5py.__version__
        assert set(s.versions) >= {"opencv", "dlib", "h5py"} and s.source_synthetic is False
        assert s.source_noise is None


def test_a_schema_1_store_still_reads_but_has_no_identity(tmp_path):
    path = tmp_path / "v1.h5"
    write(path)
    with h5py.File(path, "r+") as f:   # what schema 1 wrote: no digests, identity or provenance
        for k in ("identity", "versions", "source_synthetic"):
            del f.attrs[k]
        del f["column_sha256"]
        f.attrs["schema_version"] = 1
        f.attrs["created"] = "2024-01-01T00:00:00+00:00"
    with open_store(path) as s:
        assert len(s) == 20 and s.source_synthetic is False
    with pytest.raises(StoreError, match="schema 1.*no content identity.*prepare it again"):
        store_identity(path)
    assert verify(path).ok
