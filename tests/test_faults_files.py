"""Damaged and foreign detector and prediction files: every mutation is either read as it was
written or refused with one line naming the file (never a traceback, never a silent result),
and `predict`'s own output problems (a read-only folder, nothing decodable) are one line."""
from __future__ import annotations

import copy
import io
import math
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from austack.cli.main import cli
from austack.data.preprocess import EvalPreprocess
from austack.faces.align import alignment_params
from austack.errors import AustackError
from austack.models import create_encoder
from austack.models.detector import Detector, load_detector

AUS = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
PREPROCESS = {"resize": None, "crop": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def _detector_dict() -> dict:
    torch.manual_seed(0)
    det = Detector(create_encoder("test_tiny", len(AUS)), None, aus=AUS, thresholds=[0.5] * len(AUS),
                   preprocess=EvalPreprocess.from_dict(PREPROCESS), info={"dataset": "bp4d", "fold": 1, "alignment": alignment_params(48, 2.9)})
    return det.to_file_dict()


GOOD = _detector_dict()


def _set(path, value):
    def mutate(d):
        node = d
        for k in path[:-1]:
            node = node[k]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value(node[path[-1]]) if callable(value) else value
        return d
    return mutate


def _first_tensor(fn):
    def mutate(d):
        key = next(iter(d["encoder_state"]))
        d["encoder_state"][key] = fn(d["encoder_state"][key])
        return d
    return mutate


def _other_architecture(d):
    d["encoder"]["name"] = "resnet18.anfl"
    return d


def _linear_heads_wrong(d):
    d["heads_state"] = {"weight": torch.zeros(len(AUS), 5), "bias": torch.zeros(len(AUS))}
    return d


STRUCTURAL = {
    **{f"missing {k}": _set([k], KeyError) for k in GOOD if k not in ("austack_version", "au_names")},
    **{f"missing encoder.{k}": _set(["encoder", k], KeyError) for k in ("name", "n_au", "embed_dim", "graph_k")},
    **{f"missing preprocess.{k}": _set(["preprocess", k], KeyError) for k in ("crop", "mean", "std")},
    "other architecture": _other_architecture,
    "unknown architecture": _set(["encoder", "name"], "no_such_net.anfl"),
    "n_au larger": _set(["encoder", "n_au"], len(AUS) + 1),
    "n_au zero": _set(["encoder", "n_au"], 0),
    "n_au a string": _set(["encoder", "n_au"], "12"),
    "embed_dim other": _set(["encoder", "embed_dim"], 8),
    "graph_k above the AU count": _set(["encoder", "graph_k"], 99),
    "graph_k negative": _set(["encoder", "graph_k"], -1),
    "AU list shorter": _set(["aus"], AUS[:-2]),
    "AU list longer": _set(["aus"], AUS + [25]),
    "AU list of strings": _set(["aus"], [str(a) for a in AUS]),
    "AU list not a list": _set(["aus"], 12),
    "NaN threshold": _set(["thresholds"], [math.nan] + [0.5] * (len(AUS) - 1)),
    "all NaN thresholds": _set(["thresholds"], [math.nan] * len(AUS)),
    "threshold above 1": _set(["thresholds"], [1.5] * len(AUS)),
    "threshold below 0": _set(["thresholds"], [-0.1] * len(AUS)),
    "infinite threshold": _set(["thresholds"], [math.inf] * len(AUS)),
    "thresholds shorter": _set(["thresholds"], [0.5] * 3),
    "thresholds strings": _set(["thresholds"], ["0.5"] * len(AUS)),
    "thresholds None": _set(["thresholds"], None),
    "crop zero": _set(["preprocess", "crop"], 0),
    "crop a string": _set(["preprocess", "crop"], "32"),
    "resize below crop": _set(["preprocess", "resize"], 8),
    "mean of two": _set(["preprocess", "mean"], [0.5, 0.5]),
    "std zero": _set(["preprocess", "std"], [0.0, 0.0, 0.0]),
    "std NaN": _set(["preprocess", "std"], [math.nan] * 3),
    "preprocess a list": _set(["preprocess"], [1, 2]),
    "encoder a string": _set(["encoder"], "test_tiny"),
    "state a list": _set(["encoder_state"], [1, 2, 3]),
    "state of numbers": _set(["encoder_state"], {"a": 1}),
    "tensor wrong shape": _first_tensor(lambda t: torch.zeros(t.shape[0] + 1, *t.shape[1:])),
    "tensor scalar": _first_tensor(lambda t: torch.tensor(1.0)),
    "tensor NaN": _first_tensor(lambda t: torch.full_like(t, math.nan)),
    "tensor infinite": _first_tensor(lambda t: torch.full_like(t, math.inf)),
    "tensor missing": lambda d: (d["encoder_state"].pop(next(iter(d["encoder_state"]))), d)[1],
    "tensor extra": lambda d: (d["encoder_state"].update(extra=torch.zeros(2)), d)[1],
    "linear heads of another size": _linear_heads_wrong,
    "heads a number": _set(["heads_state"], 3),
    "format other": _set(["format"], "something-else"),
    "format version 2": _set(["format_version"], 2),
    "info a list": _set(["info"], [1]),
}


def _save(obj, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _check_refused(path: Path) -> None:
    try:
        det = load_detector(path)
    except AustackError as e:
        assert str(path) in str(e) and "\n" not in str(e), str(e)
        return
    pytest.fail(f"loaded without a word: {det.aus} {det.thresholds}")


def test_the_good_file_loads(tmp_path):
    det = load_detector(_save(GOOD, tmp_path / "detector.pt"))
    assert det.aus == AUS and det.thresholds == [0.5] * len(AUS)


@pytest.mark.parametrize("name", list(STRUCTURAL))
def test_a_structurally_damaged_detector_is_one_line(name, tmp_path):
    _check_refused(_save(STRUCTURAL[name](copy.deepcopy(GOOD)), tmp_path / "detector.pt"))


class Planted:
    def __reduce__(self):
        return (os.system, ("echo planted",))


def _bytes_of(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


GOOD_BYTES = _bytes_of(GOOD)
FOREIGN = {
    "empty": b"",
    "text": b"not a detector\n",
    "random": np.random.default_rng(0).bytes(4096),
    "a plain pickle": pickle.dumps({"format": "austack-detector"}),
    "a planted pickle": pickle.dumps(Planted()),
    "a pickle with a class in a list": pickle.dumps([Planted()]),
    "a tensor": _bytes_of(torch.zeros(3)),
    "a list": _bytes_of([1, 2, 3]),
    "a dict without format": _bytes_of({"encoder_state": {}}),
    "a zip of text": (lambda b: (zipfile.ZipFile(b, "w").writestr("x.txt", "hello"), b.getvalue())[1])(io.BytesIO()),
    **{f"cut at {f:.0%}": GOOD_BYTES[:int(len(GOOD_BYTES) * f)] for f in (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)},
}


@pytest.mark.parametrize("name", list(FOREIGN))
def test_a_foreign_or_torn_detector_is_one_line(name, tmp_path, capfd):
    path = tmp_path / "detector.pt"
    path.write_bytes(FOREIGN[name])
    _check_refused(path)
    assert "planted" not in capfd.readouterr().out


@pytest.mark.parametrize("seed", range(24))
def test_flipped_bytes_load_as_written_or_are_refused(seed, tmp_path):
    """Random byte flips anywhere: a flip in tensor data loads (the recorded sha256 catches
    it, below); any other is refused in one line. Never a traceback."""
    rng = np.random.default_rng(seed)
    data = bytearray(GOOD_BYTES)
    for pos in rng.integers(0, len(data), 1 + seed % 4):
        data[pos] ^= int(rng.integers(1, 256))
    path = tmp_path / "detector.pt"
    path.write_bytes(bytes(data))
    try:
        det = load_detector(path)
    except AustackError as e:
        assert str(path) in str(e) and "\n" not in str(e), str(e)
    else:
        assert det.aus == AUS and all(0 <= t <= 1 for t in det.thresholds)
    with pytest.raises(AustackError, match="sha256 differs"):
        load_detector(path, sha256="0" * 64)


def test_a_non_detector_through_the_cli_says_so(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps([Planted()]))
    res = CliRunner().invoke(cli, ["predict", str(path), str(tmp_path), "--out", str(tmp_path / "p.csv")])
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit), res.output
    assert "not an austack detector file" in " ".join(res.output.split())
    assert "weights_only" not in res.output and "planted" not in res.output


# --- predict's own outputs --------------------------------------------------------------------
@pytest.fixture
def detector_file(tmp_path):
    return _save(GOOD, tmp_path / "detector.pt")


def _predict(*args):
    return CliRunner().invoke(cli, ["predict", *map(str, args), "--device", "cpu"])


def test_predict_exits_non_zero_when_no_frame_decodes(detector_file, tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    for k in range(3):
        (bad / f"f{k}.jpg").write_bytes(b"\xff\xd8 not a jpeg " * k)
    out = tmp_path / "p.csv"
    res = _predict(detector_file, bad / "f1.jpg", bad / "f2.jpg", "--out", out)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert "could be decoded" in " ".join(res.output.split())
    import json
    summary = json.loads((tmp_path / "p.csv.json").read_text())["summary"]
    assert summary["frames"] == summary["undecodable"] == 2


def test_predict_into_a_read_only_folder_is_one_line(detector_file, read_only):
    res = _predict(detector_file, detector_file, "--out", read_only / "p.csv")
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit), res.output
    assert "cannot write to" in res.output and "--out" in res.output


# --- predictions.npz, as rescore, compare and the studies read it -----------------------------
def _good_predictions(folder: Path) -> Path:
    from austack.runs.rundir import save_predictions

    rng = np.random.default_rng(0)
    n, k = 40, len(AUS)
    splits = {s: (rng.random((n, k)).astype(np.float32), rng.integers(-1, 2, (n, k)).astype(np.int8),
                  np.arange(n)) for s in ("val", "test")}
    subjects = {s: np.repeat(["F001", "F002", "M001", "M002"], n // 4) for s in splits}
    folder.mkdir(parents=True, exist_ok=True)
    return save_predictions(folder, splits, subjects, AUS, [0.5] * k)[0]


def _arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _edit(fn):
    def mutate(a):
        fn(a)
        return a
    return mutate


P_MUTATIONS = {
    **{f"missing {k}": _edit(lambda a, k=k: a.pop(k)) for k in ("aus", "thresholds", "test_probs", "test_labels",
                                                                  "test_subjects", "val_labels")},
    "probs NaN": _edit(lambda a: a["test_probs"].__setitem__((0, 0), np.nan)),
    "probs above 1": _edit(lambda a: a["test_probs"].__setitem__((3, 2), 1.5)),
    "probs negative": _edit(lambda a: a["val_probs"].__setitem__((3, 2), -0.5)),
    "probs of ints": _edit(lambda a: a.__setitem__("test_probs", (a["test_probs"] > 0.5).astype(np.int64))),
    "probs one AU short": _edit(lambda a: a.__setitem__("test_probs", a["test_probs"][:, :-1])),
    "probs 1-D": _edit(lambda a: a.__setitem__("test_probs", a["test_probs"].ravel())),
    "labels 7": _edit(lambda a: a["test_labels"].__setitem__((1, 1), 7)),
    "labels of floats": _edit(lambda a: a.__setitem__("test_labels", a["test_labels"].astype(np.float32))),
    "labels fewer rows": _edit(lambda a: a.__setitem__("test_labels", a["test_labels"][:-3])),
    "thresholds NaN": _edit(lambda a: a["thresholds"].__setitem__(0, np.nan)),
    "thresholds above 1": _edit(lambda a: a.__setitem__("thresholds", a["thresholds"] + 1)),
    "thresholds shorter": _edit(lambda a: a.__setitem__("thresholds", a["thresholds"][:2])),
    "thresholds strings": _edit(lambda a: a.__setitem__("thresholds", a["thresholds"].astype(str))),
    "aus empty": _edit(lambda a: a.__setitem__("aus", np.zeros(0, np.int32))),
    "aus shorter": _edit(lambda a: a.__setitem__("aus", a["aus"][:-1])),
    "aus of floats": _edit(lambda a: a.__setitem__("aus", a["aus"].astype(np.float64))),
    "aus 2-D": _edit(lambda a: a.__setitem__("aus", a["aus"].reshape(2, -1))),
    "subjects fewer": _edit(lambda a: a.__setitem__("test_subjects", a["test_subjects"][:-1])),
    "subjects numbers": _edit(lambda a: a.__setitem__("test_subjects", np.arange(len(a["test_subjects"])))),
    "rows negative": _edit(lambda a: a["test_rows"].__setitem__(0, -5)),
}


def _rescore(run_dir, *extra):
    return CliRunner().invoke(cli, ["rescore", str(run_dir), "--boot", "100", "--json", *map(str, extra)])


def _refused_in_one_line(res, path):
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit), res.output
    assert str(path) in " ".join(res.output.split()) and "Traceback" not in res.output, res.output


def test_good_predictions_rescore(tmp_path):
    _good_predictions(tmp_path / "run" / "fold1")
    res = _rescore(tmp_path / "run")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("name", list(P_MUTATIONS))
def test_a_damaged_predictions_file_is_one_line(name, tmp_path):
    path = _good_predictions(tmp_path / "run" / "fold1")
    arrays = P_MUTATIONS[name](_arrays(path))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    _refused_in_one_line(_rescore(tmp_path / "run"), path)


P_FOREIGN = {
    "empty": lambda good: b"",
    "text": lambda good: b"probabilities\n",
    "random": lambda good: np.random.default_rng(1).bytes(2048),
    "a pickle": lambda good: pickle.dumps({"test_probs": [0.5]}),
    "a planted pickle": lambda good: pickle.dumps(Planted()),
    "one .npy array": lambda good: (lambda b: (np.save(b, np.zeros(3)), b.getvalue())[1])(io.BytesIO()),
    "an object array": lambda good: (lambda b: (np.savez(b, aus=np.array([object()], dtype=object)),
                                                b.getvalue())[1])(io.BytesIO()),
    **{f"cut at {f:.0%}": (lambda good, f=f: good[:int(len(good) * f)]) for f in (0.05, 0.3, 0.6, 0.95)},
}


@pytest.mark.parametrize("name", list(P_FOREIGN))
def test_a_foreign_or_torn_predictions_file_is_one_line(name, tmp_path, capfd):
    path = _good_predictions(tmp_path / "run" / "fold1")
    path.write_bytes(P_FOREIGN[name](path.read_bytes()))
    _refused_in_one_line(_rescore(tmp_path / "run"), path)
    assert "planted" not in capfd.readouterr().out


@pytest.mark.parametrize("seed", range(16))
def test_flipped_predictions_bytes_never_give_a_silent_result(seed, tmp_path):
    """A flip anywhere: refused by its structure, or by the sha256 recorded in the database."""
    from austack.runs.predictions_file import read_predictions

    path = _good_predictions(tmp_path / "run" / "fold1")
    from austack.fileio import sha256_file
    recorded = sha256_file(path)
    rng = np.random.default_rng(seed)
    data = bytearray(path.read_bytes())
    for pos in rng.integers(0, len(data), 1 + seed % 3):
        data[pos] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))
    with pytest.raises(AustackError, match="sha256 differs"):
        read_predictions(path, sha256=recorded)
    res = _rescore(tmp_path / "run")
    assert isinstance(res.exception, SystemExit) or res.exception is None, res.output
    if res.exit_code:
        _refused_in_one_line(res, path)


def test_a_saved_detector_is_checked_against_the_digest_beside_it(tmp_path):
    from austack.models.detector import digest_path

    det = load_detector(_save(GOOD, tmp_path / "src.pt"))
    path = det.save(tmp_path / "detector.pt")
    assert digest_path(path).read_text().split() == [__import__("austack.fileio").fileio.sha256_file(path),
                                                      "detector.pt"]
    assert load_detector(path).aus == AUS
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF        # a flip anywhere, tensor bytes included
    path.write_bytes(bytes(data))
    with pytest.raises(AustackError, match="sha256 differs"):
        load_detector(path)
    res = _predict(path, path, "--out", tmp_path / "p.csv")
    assert res.exit_code != 0 and "sha256 differs" in " ".join(res.output.split())


# --- 8. files respect the umask ---------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077])
def test_written_files_respect_the_umask(umask, detector_file, tmp_path):
    from austack.runs.rundir import write_config, write_epochs_csv
    from austack.fileio import current_umask

    old = os.umask(umask)
    try:
        assert current_umask() == umask
        run_dir = tmp_path / "fold1"
        run_dir.mkdir()
        write_config(run_dir, {"a": 1})
        write_epochs_csv(run_dir, [{"phase": "train", "epoch": 1}])
        _good_predictions(run_dir)
        bad = tmp_path / "x.jpg"
        bad.write_bytes(b"not a jpeg")
        _predict(detector_file, bad, "--out", tmp_path / "p.csv")   # no frame decodes: CSV and JSON still written
        files = [run_dir / "config.yaml", run_dir / "epochs.csv", run_dir / "predictions.npz",
                 tmp_path / "p.csv", tmp_path / "p.csv.json"]
        assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: oct(0o666 & ~umask) for f in files}
    finally:
        os.umask(old)


# --- 6. bench checks the room in --out-dir ----------------------------------------------------
def test_bench_refuses_an_out_dir_without_room(tiny_store, tmp_path):
    from conftest import mount_tmpfs
    from austack.results.db import ResultsDB

    disk = tmp_path / "small"
    if not mount_tmpfs(disk, "size=1m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        res = CliRunner().invoke(cli, ["bench", "test_tiny", "wce", "--data", str(tiny_store), "--fold", "1",
                                       "--epochs", "1", "--device", "cpu", "--workers", "0",
                                       "--out-dir", str(disk), "--db", str(tmp_path / "r.sqlite")])
        assert res.exit_code != 0 and isinstance(res.exception, SystemExit), res.output
        line = " ".join(res.output.split())
        assert "MiB free" in line and str(disk) in line and "--out-dir" in line
        assert not any(disk.iterdir())
        if (tmp_path / "r.sqlite").exists():
            with ResultsDB(tmp_path / "r.sqlite") as db:
                assert db.query(status=None) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_rescore_checks_the_sha256_recorded_in_the_database(tmp_path):
    """`rescore --db`: an edited predictions file whose structure is intact (a changed
    probability) is refused by the digest recorded with its row."""
    from austack.fileio import sha256_file
    from austack.results.db import ResultsDB
    from austack.results.schema import ResultRow

    path = _good_predictions(tmp_path / "run" / "fold1")
    row = ResultRow(dataset="bp4d", protocol="bp4d-3fold@v1", protocol_hash="0123456789ab", store="s.h5",
                    store_checksum="c", fold=1, backbone="test_tiny", loss="wce", loss_options={}, seed=0, epochs=1,
                    config={}, aus=AUS, f1=[0.5] * len(AUS), accuracy=[0.5] * len(AUS), f1_mean=0.5,
                    accuracy_mean=0.5, best_epoch=1, val_f1_mean=0.5, n_train=1, n_val=1, n_test=1, device="cpu",
                    austack_version="0", torch_version="2", wall_s=1.0, created="2026-01-01T00:00:00+00:00",
                    predictions=str(path), predictions_sha256=sha256_file(path))
    with ResultsDB(tmp_path / "r.sqlite") as db:
        db.insert(row)
    assert _rescore(tmp_path / "run", "--db", tmp_path / "r.sqlite").exit_code == 0
    arrays = _arrays(path)
    arrays["test_probs"][0, 0] = 1 - arrays["test_probs"][0, 0]   # still a valid probability
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    assert _rescore(tmp_path / "run").exit_code == 0                # no database: nothing recorded to check
    res = _rescore(tmp_path / "run", "--db", tmp_path / "r.sqlite")
    _refused_in_one_line(res, path)
    assert "sha256 differs" in " ".join(res.output.split())
