"""How every number on a board was made: published provenance, measured setup codes, focus."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from austack import load_protocol
from austack.published import load_published
from austack.published_provenance import FIELDS, MARK_LEGEND
from austack.results import leaderboard as lb
from austack.results.db import ResultsDB
from austack.results.schema import ResultRow
from austack.results.setup_code import CODE_LEGEND

PROTO = load_protocol("bp4d-3fold@v1")


def test_every_published_row_has_every_fact_with_evidence():
    rows = load_published()
    for r in rows:
        prov = r.provenance.to_dict()
        assert prov["selection"]["value"] in ("test", "validation", "unknown"), (r.table, r.method)
        for f in FIELDS:
            assert prov[f]["value"] and prov[f]["evidence"], (r.table, r.method, f)
    by = {(r.table, r.label): r for r in rows}
    assert by["II", "AUNCE"].provenance.selection.value == "test"          # AUNCE's code scores test each epoch
    assert by["II", "AUNCE"].provenance.plus_minus.value == "unknown"      # the paper does not say
    assert by["III", "MEGraph"].provenance.camera.value == "left"
    assert by["II", "SimCLR"].provenance.selection.value == "unknown"      # copied numbers: never guessed


def test_table_vi_cites_the_paper_that_measured_it_and_repeats_are_marked():
    by = {(r.table, r.label): r for r in load_published("bp4d")}
    aunce = by["II", "AUNCE"].citation
    assert by["VI", "ResNet50 + WCE"].citation == aunce and by["VI", "ResNet18 + AUNCE"].citation == aunce
    assert by["VI", "MEGraph (one stage) + AUNCE"].same_as == "II AUNCE"


def test_the_default_bp4d_board_at_80_columns_has_marks_legend_and_no_repeat():
    [board] = lb.leaderboards_from_db(None, "bp4d")
    published = board.of_kind(lb.PUBLISHED)
    labels = [(r.method, r.avg, r.accuracy) for r in published]
    assert len(labels) == len(set(labels))
    assert not any(r.provenance.get("same_as") for r in published)
    assert all(r.how and r.provenance["selection"]["value"] for r in published)
    aunce = next(r for r in published if r.method == "AUNCE")
    assert aunce.how == "T5i"
    text = lb.to_text([board], width=80)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    assert any(line.split()[:2] == ["1", "AUNCE"] and "T5i" in line.split() for line in lines)
    flat = " ".join(text.split())
    assert " ".join(MARK_LEGEND.split()) in flat and "hidden that repeat another table's row" in flat


def test_json_rows_carry_the_provenance_fields():
    doc = json.loads(lb.to_json(lb.leaderboards_from_db(None, "disfa")))
    rows = doc["boards"][0]["rows"]
    for r in rows:
        assert r["selection"] in ("test", "validation", "unknown") and r["how"]
        assert set(FIELDS) <= set(r["provenance"])
        assert all(r["provenance"][f]["evidence"] for f in FIELDS)
    megraph = next(r for r in rows if r["method"] == "MEGraph")
    assert (megraph["selection"], megraph["threshold"], megraph["camera"]) == ("test", "fixed 0.5", "left")


def result(fold, **kw) -> ResultRow:
    base = dict(dataset="bp4d", protocol=PROTO.id, protocol_hash=PROTO.hash, store="/s.h5", store_checksum="c",
                fold=fold, backbone="resnet18", loss="wce", loss_options={}, seed=0, epochs=2, config={},
                aus=list(PROTO.aus), f1=[0.4] * 12, accuracy=[0.7] * 12, f1_mean=0.4, accuracy_mean=0.7)
    return ResultRow(**{**base, **kw})


@pytest.mark.parametrize("config, synthetic, code", [
    ({}, False, "V5r"),
    ({"threshold": "val", "pretrained": "/w/resnet18.tv_in1k.pth"}, False, "Vvi"),
    ({"label_noise": 0.4, "label_noise_kind": "missed"}, True, "V5r S m0.4"),
    ({"label_noise": 0.2}, False, "V5r n0.2"),
    ({"weights": "resnet50.tv_in1k"}, False, "V5i"),
])
def test_measured_rows_say_threshold_init_selection_synthetic_noise_and_target(config, synthetic, code):
    [m] = lb.aggregate([result(k, config=config, synthetic=synthetic) for k in (1, 2, 3)])
    assert m.how == code
    assert m.provenance["selection"] == "validation"
    assert m.recipe["label_noise"] == config.get("label_noise", 0.0)


def test_a_cross_dataset_row_names_its_target_and_its_recorded_weights():
    """A row trained on BP4D and scored on DISFA (bench --test-data) is marked >disfa; the init
    is the tag the run resolved (`provenance.weights`), not what was asked ("published")."""
    weights = {"spec": "published", "kind": "tag", "tag": "resnet18.tv_in1k", "path": "/cache/x", "sha256": "0"}
    rows = [result(k, dataset="disfa", source_dataset="bp4d", source_store_checksum="s", test_split="all",
                   aus=[1, 2, 4, 6, 12], f1=[0.4] * 5, accuracy=[0.7] * 5, config={"pretrained": "published"},
                   provenance={"weights": weights}) for k in (1, 2, 3)]
    [m] = lb.aggregate(rows)
    assert m.how == "V5i >disfa" and m.provenance["init"] == "resnet18.tv_in1k"


def test_tuned_and_fixed_thresholds_are_two_rows_told_apart():
    rows = [result(1, config={"threshold": "val"}, config_hash="a" * 12), result(1, config_hash="b" * 12)]
    doc = json.loads(lb.to_json(lb.build_leaderboards(rows)))
    assert sorted(r["threshold"] for r in doc["boards"][0]["rows"]) == ["fixed 0.5", "tuned on validation"]


@pytest.fixture()
def synthetic_db(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsDB(path) as db:
        db.insert_many([result(k, synthetic=True, config_hash="f" * 12) for k in (1, 2, 3)])
    return str(path)


def test_leaderboard_db_shows_its_boards_first_and_others_on_request(synthetic_db):
    from austack.cli.main import cli

    res = CliRunner().invoke(cli, ["leaderboard", "--db", synthetic_db, "--format", "json"])
    assert res.exit_code == 0, res.output
    boards = json.loads(res.output)["boards"]
    assert [(b["dataset"], b["synthetic"]) for b in boards] == [("bp4d", True)]
    assert any("--other-boards shows them" in n for n in boards[-1]["notes"])
    res = CliRunner().invoke(cli, ["leaderboard", "--db", synthetic_db, "--format", "json", "--other-boards"])
    boards = json.loads(res.output)["boards"]
    assert len(boards) > 1 and ("bp4d", True) in [(b["dataset"], b["synthetic"]) for b in boards]


def test_a_real_row_brings_its_published_neighbours_only(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsDB(path) as db:
        db.insert_many([result(k, config_hash="e" * 12) for k in (1, 2, 3)])
    boards = lb.leaderboards_from_db(path, other_boards=False)
    assert [b.dataset for b in boards] == ["bp4d"]
    assert boards[0].of_kind(lb.PUBLISHED) and boards[0].of_kind(lb.MEASURED)[0].how == "V5r"
    text = lb.to_text(boards, width=80)
    assert " ".join(CODE_LEGEND.split()) in " ".join(text.split())
