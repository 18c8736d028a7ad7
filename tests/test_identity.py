"""Result identity: normalised config hashes, the results version, and `compare`'s ids."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from austack import load_protocol
from austack.runs.config import BenchConfig
from austack.engine.context import config_hash
from austack.store import StoreInfo
from austack.errors import ResultsError
from austack.results import identity
from austack.results import leaderboard as lb
from austack.results.db import ResultsDB
from austack.results.rescore import resolve
from austack.results.schema import ResultRow

PROTO = load_protocol("bp4d-3fold@v1")
STORE = StoreInfo("/s.h5", "bp4d", PROTO.id, PROTO.hash, PROTO.aus, "c", 64, {})


def cfg_hash(**kw) -> str:
    return config_hash(BenchConfig(backbone="resnet18", loss="wce", **kw), STORE, PROTO, None)


def test_equal_settings_of_other_types_hash_equal():
    assert cfg_hash(grad_clip=1) == cfg_hash(grad_clip=1.0)
    assert cfg_hash(lr=1e-3) == cfg_hash(lr=0.001)
    assert cfg_hash(loss_options={"tau": 1, "p": (0.2, 0.8)}) == cfg_hash(loss_options={"p": [0.2, 0.8], "tau": 1.0})
    assert cfg_hash(grad_clip=1) != cfg_hash(grad_clip=2)


def test_a_weights_path_hashes_by_the_file_content(tmp_path):
    """The path itself is left out of the hash; the engine passes the resolved file's sha256
    (`test_pretrained.py` runs that through `bench`). A path elsewhere in a config normalises
    to its content too."""
    from austack.fileio import sha256_file

    a, b, c = tmp_path / "a" / "w.pth", tmp_path / "b" / "weights.pth", tmp_path / "c.pth"
    for path, data in ((a, b"same"), (b, b"same"), (c, b"other")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def by_file(path):
        return config_hash(BenchConfig(backbone="resnet18", loss="wce", pretrained=str(path)), STORE, PROTO,
                           sha256_file(path))

    assert by_file(a) == by_file(b) != by_file(c)
    assert identity.normalise(str(a)).startswith("sha256:")
    assert identity.normalise("wce") == "wce"            # a name is not a path


def test_the_results_version_is_part_of_the_identity(monkeypatch):
    before = cfg_hash()
    monkeypatch.setattr(identity, "RESULTS_VERSION", identity.RESULTS_VERSION + 1)
    assert cfg_hash() != before


def row(fold, version=None, **kw) -> ResultRow:
    base = dict(dataset="bp4d", protocol=PROTO.id, protocol_hash=PROTO.hash, store="/s.h5", store_checksum="c",
                fold=fold, backbone="resnet18", loss="wce", loss_options={}, seed=0, epochs=2, config={},
                aus=[1], f1=[0.5], accuracy=[0.7], f1_mean=0.5, accuracy_mean=0.7, config_hash="a" * 12,
                provenance={} if version is None else {"results_version": version})
    return ResultRow(**{**base, **kw})


def test_rows_of_another_results_version_never_merge():
    rows = [row(k) for k in (1, 2, 3)] + [row(k, version=identity.RESULTS_VERSION) for k in (1, 2, 3)]
    measured = lb.aggregate(rows)
    assert len(measured) == 2
    assert sorted(m.recipe["results_version"] for m in measured) == [identity.UNVERSIONED, identity.RESULTS_VERSION]


@pytest.fixture()
def db(tmp_path):
    with ResultsDB(tmp_path / "r.sqlite") as d:
        d.insert_many([row(1, config_hash="703100000000"), row(2, config_hash="703100000000"),
                       row(1, config_hash="7aaaaaaaaaaa")])
        yield d


def test_compare_ids_hash_prefixes_and_row_numbers(db):
    assert {r.fold for r in resolve(db, "7031")} == {1, 2}             # all digits: still a hash prefix
    [one] = resolve(db, "#3")
    assert one.config_hash == "7aaaaaaaaaaa"
    with pytest.raises(ResultsError, match="for row 9 write #9"):
        resolve(db, "9")
    with pytest.raises(ResultsError, match="several config hashes"):
        resolve(db, "7")
    with pytest.raises(ResultsError, match="not a row id"):
        resolve(db, "#x")


def test_compare_cli_names_a_bad_id_in_one_line(db):
    from austack.cli.main import cli

    res = CliRunner().invoke(cli, ["compare", "#1", "9", "--db", str(db.path)])
    assert res.exit_code == 1 and "for row 9 write #9" in res.output and "Traceback" not in res.output
