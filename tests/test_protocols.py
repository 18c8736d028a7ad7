"""Protocols: fold lists as the spec gives them, fold mapping, hashes, validation rule."""
import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from austack.errors import ProtocolError, UnknownNameError
from austack.protocols import LabelRule, list_protocols, load_protocol

BP4D_PARTS = {
    "part1": "F001 M007 F018 F008 F002 M004 F010 F009 M012 M001 F016 M014 F023 M008".split(),
    "part2": "M011 F003 M010 M002 F005 F022 M018 M017 F013 M016 F020 F011 M013 M005".split(),
    "part3": "F007 F015 F006 F019 M006 M009 F012 M003 F004 F021 F017 M015 F014".split(),
}
DISFA_PARTS = {
    "part1": "SN002 SN010 SN001 SN026 SN027 SN032 SN030 SN009 SN016".split(),
    "part2": "SN013 SN018 SN011 SN028 SN012 SN006 SN031 SN021 SN024".split(),
    "part3": "SN003 SN029 SN023 SN025 SN008 SN005 SN007 SN017 SN004".split(),
}
# Hashes pinned on purpose: a change here means every stored result changes identity.
PINNED = {"bp4d-3fold@v1": "37af7779e238", "disfa-3fold@v1": "387f8fb18904", "gft-official@v1": "1f2badd49e8e",
          "affwild2-official@v1": "5cbbe34eeacb", "bp4d+-3fold@v1": "1eb1d7d320a2"}
SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "datasets.md"


def test_catalogue_has_every_dataset():
    assert {p.dataset for p in list_protocols()} == {"bp4d", "bp4d+", "disfa", "gft", "affwild2"}


@pytest.mark.parametrize("name,parts", [("bp4d", BP4D_PARTS), ("disfa", DISFA_PARTS)])
def test_part_lists_and_order(name, parts):
    p = load_protocol(name)
    assert {k: list(v) for k, v in p.parts.items()} == parts


@pytest.mark.skipif(not SPEC.exists(), reason="shared/spec not beside the checkout")
@pytest.mark.parametrize("name", ["bp4d", "disfa"])
def test_part_lists_match_the_spec_text(name):
    text = SPEC.read_text()
    p = load_protocol(name)
    for part, members in p.parts.items():
        m = re.search(rf"{name.upper()} {part}: (.+)", text)
        assert m.group(1).split() == list(members)


@pytest.mark.parametrize("name", ["bp4d", "disfa", "bp4d+"])
def test_fold_k_tests_on_part_4_minus_k(name):
    p = load_protocol(name)
    assert [(f.index, f.test_parts) for f in p.folds] == [(1, ("part3",)), (2, ("part2",)), (3, ("part1",))]


@pytest.mark.parametrize("name", ["bp4d", "disfa", "bp4d+"])
def test_every_subject_tests_exactly_once(name):
    p = load_protocol(name)
    everyone = [u for v in p.parts.values() for u in v]
    assert len(everyone) == len(set(everyone))
    tested = []
    for f in p.folds:
        a = p.assign(f.index, everyone)
        tested += [u for u, s in a.items() if s == "test"]
        assert not {u for u, s in a.items() if s in ("train", "val")} & set(p.subjects(f.index, "test", everyone))
    assert sorted(tested) == sorted(everyone)


def test_bp4d_counts():
    p = load_protocol("bp4d")
    assert sum(map(len, p.parts.values())) == 41
    assert p.aus == (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)


def test_bp4dplus_parts_follow_the_documented_rule():
    p = load_protocol("bp4d+")
    subjects = {"F": [f"F{i:03d}" for i in range(1, 83)], "M": [f"M{i:03d}" for i in range(1, 59)]}
    parts = [[], [], []]
    for group in subjects.values():
        ordered = sorted(group, key=lambda s: hashlib.sha256(f"bp4d+-3fold:{s}".encode()).hexdigest())
        for i, s in enumerate(ordered):
            parts[i % 3].append(s)
    assert [sorted(x) for x in parts] == [list(p.parts[f"part{k}"]) for k in (1, 2, 3)]
    assert p.defined_by == "austack"


def test_gft_official_split():
    p = load_protocol("gft")
    test = list(p.parts["test"])
    assert len(test) == 18 and {t[:3] for t in test} == {"008", "010", "019", "022", "028", "030"}
    everyone = [f"{g:03d}{s}" for g in range(1, 33) for s in "ABC"]
    a = p.assign(1, everyone)
    assert sum(s == "test" for s in a.values()) == 18
    assert sum(s in ("train", "val") for s in a.values()) == 78


def test_affwild2_selects_by_dataset_split():
    p = load_protocol("affwild2")
    a = p.assign(1, {"v1": "Train_Set", "v2": "Train_Set", "v3": "Validation_Set", "v4": "Other"})
    assert a["v3"] == "test" and a["v4"] == "unused"
    assert sorted([a["v1"], a["v2"]]) == ["train", "val"]


def test_validation_comes_from_training_subjects_and_is_stable():
    p = load_protocol("bp4d")
    everyone = [u for v in p.parts.values() for u in v]
    a1, a2 = p.assign(1, everyone), p.assign(1, list(reversed(everyone)))
    assert a1 == a2
    val = [u for u, s in a1.items() if s == "val"]
    assert len(val) == round(0.15 * 28) and not set(val) & set(p.parts["part3"])


def test_subjects_outside_the_protocol_are_unused():
    assert load_protocol("bp4d").assign(1, ["F001", "X999"])["X999"] == "unused"


def test_hashes_are_pinned_and_stable():
    for p in list_protocols():
        assert p.hash == PINNED[p.id]
        assert load_protocol(p.id).hash == p.hash


def test_hash_ignores_formatting_but_not_lists(tmp_path):
    src = Path(load_protocol("bp4d").path)
    text = src.read_text()
    reformatted = tmp_path / src.name
    reformatted.write_text("# a new comment\n" + text.replace("title: BP4D", "title:   Renamed BP4D"))
    assert load_protocol(str(reformatted)).hash == PINNED["bp4d-3fold@v1"]
    moved = tmp_path / "moved" / src.name
    moved.parent.mkdir()
    moved.write_text(text.replace("F001, M007", "M007, F001"))
    assert load_protocol(str(moved)).hash != PINNED["bp4d-3fold@v1"]


def test_unknown_protocol_and_fold():
    with pytest.raises(UnknownNameError, match="did you mean 'bp4d'"):
        load_protocol("bp4e")
    with pytest.raises(ProtocolError, match="has no fold 4; folds: 1, 2, 3"):
        load_protocol("bp4d").fold(4)
    with pytest.raises(ProtocolError, match="unknown split"):
        load_protocol("bp4d").subjects(1, "dev", [])


def test_malformed_protocol_files(tmp_path):
    src = Path(load_protocol("disfa").path)
    bad = tmp_path / src.name
    bad.write_text(src.read_text().replace("test: [part3]", "test: [part9]"))
    with pytest.raises(ProtocolError, match="unknown part"):
        load_protocol(str(bad))
    dup = tmp_path / "d" / src.name
    dup.parent.mkdir()
    dup.write_text(src.read_text().replace("SN003, SN029", "SN002, SN029"))
    with pytest.raises(ProtocolError, match="SN002 is in both"):
        load_protocol(str(dup))
    misnamed = tmp_path / "other.yaml"
    shutil.copy(src, misnamed)
    with pytest.raises(ProtocolError, match="must be named disfa-3fold@v1.yaml"):
        load_protocol(str(misnamed))


def test_label_rules():
    occ = LabelRule("occurrence", 1, (9,))
    labels, bad = occ.encode(np.array([0, 1, 9, 5]))
    assert labels.tolist() == [0, 1, -1, -1] and bad.tolist() == [False, False, False, True]
    inten = LabelRule("intensity", 2, ())
    labels, bad = inten.encode(np.array([0, 1, 2, 5, 7]))
    assert labels.tolist() == [0, 0, 1, 1, -1] and bad.tolist() == [False] * 4 + [True]
