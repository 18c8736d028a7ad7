"""Leaderboards: fold aggregation checked by hand, markers, ranking, and every format parsed back."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from dataclasses import dataclass, field

import numpy as np
import pytest

from austack import load_protocol
from austack.errors import ConfigError
from austack.results import leaderboard as lb
from austack.results.db import ResultsDB
from austack.results.schema import ResultRow

PROTO = load_protocol("bp4d-3fold@v1")
AUS = [1, 2, 4]


def result(fold, f1, acc=0.8, **kw) -> ResultRow:
    base = dict(dataset="bp4d", protocol=PROTO.id, protocol_hash=PROTO.hash, store="/s.h5", store_checksum="c",
                fold=fold, backbone="resnet18", loss="wce", loss_options={}, seed=0, epochs=2, config={},
                aus=AUS, f1=list(f1), accuracy=[acc] * len(f1), f1_mean=sum(f1) / len(f1) if f1 else None, accuracy_mean=acc)
    base.update(kw)
    return ResultRow(**base)


@dataclass(frozen=True)
class FakePublished:   # the shape of austack.published.PublishedRow
    method: str
    avg: float
    f1: tuple
    aus: tuple = tuple(AUS)
    table: str = "II"
    venue: str = "2024 Venue"
    dataset: str = "bp4d"
    kind: str = "comparison"
    avg_sd: float | None = None
    accuracy: float | None = None
    flags: tuple = ()
    citation: str = "A. Author, A paper, 2024."
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        return self.method


# Three folds of one recipe; per fold Avg = 33.33, 40.00, 36.67.
THREE_FOLDS = [result(1, [0.5, 0.2, 0.3], acc=0.8), result(2, [0.7, 0.4, 0.1], acc=0.9),
               result(3, [0.6, 0.3, 0.2], acc=0.7)]


def only(boards, kind=lb.MEASURED):
    [board] = boards
    return board, board.of_kind(kind)


def test_mean_and_sd_over_folds_by_hand():
    board, [row] = only(lb.build_leaderboards(THREE_FOLDS))
    assert board.dataset == "bp4d" and board.protocol == PROTO.id and board.aus == PROTO.aus
    assert row.f1[1] == pytest.approx(60.0) and row.f1_sd[1] == pytest.approx(10.0)
    assert row.f1[2] == pytest.approx(30.0) and row.f1_sd[2] == pytest.approx(10.0)
    assert row.f1[4] == pytest.approx(20.0) and row.f1_sd[4] == pytest.approx(10.0)
    assert row.value("AU6") is None                            # an AU the runs did not score
    assert row.avg == pytest.approx((100 / 3 + 40 + 110 / 3) / 3)
    assert row.avg_sd == pytest.approx(10 / 3)                 # std(33.3, 40, 36.7), ddof=1
    assert row.accuracy == pytest.approx(80.0) and row.accuracy_sd == pytest.approx(10.0)
    assert (row.folds, row.folds_expected, row.seeds, row.runs) == ((1, 2, 3), 3, 1, 3)
    assert row.complete and row.flags == ()
    assert row.method == "resnet18 + wce" and "random init" in row.setup


def test_seeds_are_averaged_within_a_fold_first():
    rows = [result(1, [0.4, 0, 0], seed=0), result(1, [0.6, 0, 0], seed=1), result(2, [0.8, 0, 0], seed=0)]
    _, [row] = only(lb.build_leaderboards(rows))
    assert row.f1[1] == pytest.approx(65.0)                   # mean(50, 80), not mean(40, 60, 80)
    assert row.f1_sd[1] == pytest.approx(21.2132, abs=1e-4)
    assert (row.seeds, row.runs) == (2, 3)


def test_one_fold_has_no_spread_and_is_marked_partial():
    _, [row] = only(lb.build_leaderboards(THREE_FOLDS[:1]))
    assert row.avg_sd is None and row.f1_sd[1] is None
    assert not row.complete and "partial: 1/3 folds" in row.flags


def test_recipes_are_kept_apart():
    rows = THREE_FOLDS + [result(1, [0.1, 0.1, 0.1], loss="aunce.paper", loss_options={"tau": 0.5}),
                          result(1, [0.1, 0.1, 0.1], epochs=9), result(1, [0.1, 0.1, 0.1], pretrained="/w/r18.pth")]
    _, measured = only(lb.build_leaderboards(rows))
    assert len(measured) == 4
    setups = {r.setup for r in measured}
    assert "tau=0.5; 2 ep; random init" in setups and "2 ep; weights r18.pth" in setups


def test_changed_protocol_hash_is_marked_and_grouped_apart():
    rows = THREE_FOLDS + [result(k, [0.5, 0.5, 0.5], protocol_hash="ffffffffffff") for k in (1, 2, 3)]
    _, measured = only(lb.build_leaderboards(rows))
    changed = [r for r in measured if r.recipe["protocol_hash"] == "ffffffffffff"]
    assert len(measured) == 2 and len(changed) == 1
    assert changed[0].flags == (f"protocol changed: ran ffffffffffff, now {PROTO.hash}",)


def test_unknown_protocol_is_marked():
    _, [row] = only(lb.build_leaderboards([result(1, [0.5, 0.5, 0.5], protocol="bp4d-7fold@v9")]))
    assert row.flags == ("protocol bp4d-7fold@v9 not found",) and row.folds_expected is None


def test_error_rows_do_not_count():
    rows = THREE_FOLDS + [result(1, [], status="error", error="boom", f1_mean=None)]
    _, [row] = only(lb.build_leaderboards(rows))
    assert row.runs == 3


def test_best_per_column_is_ranked_within_each_kind():
    # aunce: AU1 90, AU2 10, AU4 20, Avg 40.0; wce: AU1 60, AU2 30, AU4 20, Avg 36.7; both Acc 80
    rows = THREE_FOLDS + [result(k, [0.9, 0.1, 0.2], loss="aunce.paper") for k in (1, 2, 3)]
    pubs = [FakePublished("Alpha", 70.0, (80.0, 60.0, 70.0)), FakePublished("Beta", 60.0, (90.0, 40.0, 50.0))]
    board, measured = only(lb.build_leaderboards(rows, pubs))
    published = board.of_kind(lb.PUBLISHED)
    assert [(r.rank, r.method) for r in measured] == [(1, "resnet18 + aunce.paper"), (2, "resnet18 + wce")]
    assert measured[0].best == {"AU1", "Avg"}                  # AU4 and Acc are ties: nobody leads
    assert measured[1].best == {"AU2"}
    assert [(r.rank, r.method) for r in published] == [(1, "Alpha"), (2, "Beta")]
    assert published[0].best == {"AU2", "AU4", "Avg"} and published[1].best == {"AU1"}


def test_ties_and_zeros_are_never_best():
    rows = [result(1, [0.5, 0.0, 0.5]), result(1, [0.5, 0.0, 0.4], loss="aunce.paper"),
            result(1, [0.0, 0.0, 0.0], loss="aunce.reference")]
    board, measured = only(lb.build_leaderboards(rows))
    assert [r.best for r in measured] == [{"AU4", "Avg"}, set(), set()]
    md, latex = lb.to_markdown([board]), lb.to_latex([board])
    assert "**0.0**" not in md and md.count("**") == 4        # AU4 50.0 and Avg 33.3 only
    assert r"\textbf{0.0}" not in latex and latex.count(r"\textbf{") == 2


def test_published_rows_are_marked_and_cited():
    pub = FakePublished("Alpha", 70.0, (80.0, 60.0, 70.0), avg_sd=0.2, accuracy=79.5, flags=("avg_mismatch: x",))
    board, [row] = only(lb.build_leaderboards([], [pub]), kind=lb.PUBLISHED)
    assert row.kind == "published" and row.citation == pub.citation
    assert row.f1 == {1: 80.0, 2: 60.0, 4: 70.0} and (row.avg, row.avg_sd, row.accuracy) == (70.0, 0.2, 79.5)
    assert row.setup == "Table II, 2024 Venue" and row.flags == ("avg_mismatch: x",)
    md = lb.to_markdown([board])
    assert "| published | Alpha |" in md and "avg_mismatch: x; [1]" in md and "[1] A. Author, A paper, 2024." in md
    assert json.loads(lb.to_json([board]))["boards"][0]["rows"][0]["citation"] == pub.citation


def test_the_shipped_published_tables_join_the_board():
    from austack.published import load_published

    boards = lb.leaderboards_from_db(None, "bp4d")
    board, published = only(boards, kind=lb.PUBLISHED)
    assert published and all(r.kind == "published" and r.citation for r in published)
    shown = {p.kind for p in load_published("bp4d") if any(r.method == p.label for r in published)}
    assert shown <= set(lb.DEFAULT_PUBLISHED_KINDS)
    everything = lb.leaderboards_from_db(None, "bp4d", show_all=True)[0].of_kind(lb.PUBLISHED)
    assert len(everything) == len(load_published("bp4d")) > len(published)


def test_noncomparable_hidden_unless_asked(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    db.insert_many(THREE_FOLDS + [result(1, [0.9, 0.9, 0.9], comparable=False),
                                  result(2, [], status="error", error="boom", f1_mean=None, accuracy=[])])
    board, [row] = only(lb.leaderboards_from_db(db.path, published=False))
    assert row.runs == 3
    assert board.notes == ["1 failed fold run(s) (status=error) not shown:",
                           "  resnet18 + wce fold 2 seed 0: boom",
                           "1 non-comparable fold result(s) (debug subsample) hidden; --all shows them"]
    board, measured = only(lb.leaderboards_from_db(db.path, published=False, show_all=True))
    hidden = [r for r in measured if not r.recipe["comparable"]]
    assert len(measured) == 2 and hidden[0].flags == ("partial: 1/3 folds", "not comparable (debug subsample)")
    assert board.notes[0] == "1 failed fold run(s) (status=error) not shown:" and len(board.notes) == 2


# ---- formats: each parses back to the same numbers --------------------------------------
@pytest.fixture
def board():
    rows = THREE_FOLDS + [result(k, [0.9, 0.15, 0.125], loss="aunce.paper") for k in (1, 2)]
    pubs = [FakePublished("Alpha", 70.0, (80.0, 60.0, 70.0), avg_sd=0.3, accuracy=79.5),
            FakePublished("Beta | pipe", 61.25, (None, 40.0, 50.0))]
    return lb.build_leaderboards(rows, pubs)[0]


def expected(board, digits):
    """(kind, method) -> {column: value rounded as the format prints it}, from the row objects."""
    return {(r.kind, r.method): {c: None if r.value(c) is None else round(r.value(c), digits)
                                 for c in board.columns} for r in board.rows}


def num(text: str) -> float | None:
    text = text.replace("**", "").replace(r"\textbf{", "").replace("}", "").strip()
    text = text.split("±")[0].split(r"$\pm$")[0].strip()
    return None if text in ("", lb.MISSING, "--") else float(text)


def test_csv_parses_back(board):
    recs = list(csv.DictReader(io.StringIO(lb.to_csv([board]))))
    assert len(recs) == len(board.rows)
    want = expected(board, digits=4)
    for rec in recs:
        got = {f"AU{a}": num(rec[f"AU{a}"]) for a in board.aus} | {"Avg": num(rec["avg"]), "Acc": num(rec["accuracy"])}
        assert got == want[(rec["kind"], rec["method"])]
        row = next(r for r in board.rows if (r.kind, r.method) == (rec["kind"], rec["method"]))
        assert set(filter(None, rec["best"].split(";"))) == set(row.best)
    wce = next(r for r in recs if r["method"] == "resnet18 + wce")
    assert (wce["AU1_sd"], wce["folds"], wce["folds_expected"]) == ("10.0", "1;2;3", "3")


def test_json_parses_back(board):
    data = json.loads(lb.to_json([board]))
    [b] = data["boards"]
    assert b["aus"] == list(board.aus) and b["protocol_hash"] == PROTO.hash
    want = expected(board, digits=4)
    for rec in b["rows"]:
        got = dict(zip((f"AU{a}" for a in b["aus"]), rec["f1"])) | {"Avg": rec["avg"], "Acc": rec["accuracy"]}
        assert got == want[(rec["kind"], rec["method"])]


def test_markdown_parses_back(board):
    text = lb.to_markdown([board])
    lines = [line for line in text.splitlines() if line.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split(" | ")]
    want = expected(board, digits=1)
    bold = 0
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rec = dict(zip(head, cells))
        key = (rec["Kind"], rec["Method"].replace("\\|", "|"))
        assert {c: num(rec[c]) for c in board.columns} == want[key]
        bold += sum(rec[c].startswith("**") for c in board.columns)
    assert bold == sum(len(r.best) for r in board.rows)


def test_latex_parses_back(board):
    text = lb.to_latex([board])
    body = text.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
    lines = [line for line in body.splitlines() if line.endswith(r"\\")]
    head = ["#", "Kind", "Method", "Setup", "How", *board.columns, "Folds", "Notes"]
    want = expected(board, digits=1)
    for line in lines:
        cells = [c.strip() for c in line[:-2].split(" & ")]
        rec = dict(zip(head, cells))
        method = re.sub(r"~\[\d+\]$", "", rec["Method"]).replace(r"\textbar{}", "|")
        assert {c: num(rec[c]) for c in board.columns} == want[(rec["Kind"], method)]
    assert text.count(r"\textbf{") == sum(len(r.best) for r in board.rows)
    assert r"\begin{tabular}" in text and r"\end{tabular}" in text


def test_rich_tables_right_align_numbers(board):
    from rich.console import Console

    table = lb.summary_table(board, lb.MEASURED)
    justify = {c.header: c.justify for c in table.columns}
    assert justify["Avg F1"] == justify["Folds"] == justify["Seeds"] == "right" and justify["Method"] == "left"
    [heading, per_au] = lb.au_tables(board, lb.MEASURED, Console(width=200))
    assert heading.plain == "bp4d: measured, F1 per AU"
    justify = {c.header: c.justify for c in per_au.columns}
    assert all(justify[c] == "right" for c in board.columns)
    text = lb.to_text([board])
    assert "resnet18 + aunce.paper" in text and "Alpha [1]" in text and "[1] A. Author" in text
    assert f"{board.of_kind('measured')[0].avg:.1f}" in text


def test_unknown_format():
    with pytest.raises(ConfigError, match="unknown leaderboard format 'xls'; expected one of table, csv"):
        lb.render([], "xls")


# ---- identity: one row per experiment, never two experiments in one row --------------------
def test_one_config_on_one_store_is_one_row_over_folds_and_seeds():
    rows = [result(k, [0.5, 0.5, 0.5], seed=s, config_hash="a" * 12) for k in (1, 2, 3) for s in (0, 1)]
    _, [row] = only(lb.build_leaderboards(rows))
    assert (len(row.folds), row.seeds, row.runs) == (3, 2, 6)
    assert row.config_hash == "a" * 12 and row.setup.startswith("cfg aaaaaaaa;")


def test_another_config_or_store_is_another_row():
    rows = ([result(k, [0.5, 0.5, 0.5], config_hash="a" * 12) for k in (1, 2, 3)]
            + [result(k, [0.1, 0.1, 0.1], config_hash="b" * 12) for k in (1, 2, 3)]
            + [result(k, [0.3, 0.3, 0.3], config_hash="a" * 12, store_checksum="d") for k in (1, 2, 3)])
    _, measured = only(lb.build_leaderboards(rows))
    keys = sorted((r.config_hash, r.store_checksum, r.avg) for r in measured)
    assert keys == [("a" * 12, "c", pytest.approx(50.0)), ("a" * 12, "d", pytest.approx(30.0)),
                    ("b" * 12, "c", pytest.approx(10.0))]
    assert all("store " in r.setup for r in measured)        # several stores: each row names its own


def test_rows_without_a_config_hash_group_by_their_settings():
    base = {"lr": 1e-4, "epochs": 2, "device": "cpu", "workers": 2, "data": "/a.h5", "out_dir": "runs"}
    rows = [result(1, [0.5] * 3, config=dict(base)),
            result(2, [0.5] * 3, config={**base, "device": "cuda", "workers": 8, "data": "/b.h5", "seed": 3}),
            result(3, [0.1] * 3, config={**base, "lr": 1e-3})]
    _, measured = only(lb.build_leaderboards(rows))
    assert sorted(len(r.folds) for r in measured) == [1, 2]   # lr differs: apart; device, paths: not


def test_synthetic_results_get_their_own_board_without_published_rows():
    pubs = [FakePublished("Alpha", 70.0, (80.0, 60.0, 70.0))]
    rows = THREE_FOLDS + [result(k, [0.2] * 3, synthetic=True, store_checksum="s") for k in (1, 2, 3)]
    real, synthetic = lb.build_leaderboards(rows, pubs)
    assert (real.synthetic, synthetic.synthetic) == (False, True)
    assert synthetic.heading == "bp4d layout, synthetic" and synthetic.of_kind(lb.PUBLISHED) == []
    assert len(real.of_kind(lb.PUBLISHED)) == 1 and len(real.of_kind(lb.MEASURED)) == 1
    assert "### bp4d layout, synthetic: bp4d-3fold@v1" in lb.to_markdown([real, synthetic])
    data = json.loads(lb.to_json([real, synthetic]))
    assert [b["synthetic"] for b in data["boards"]] == [False, True]
    assert all(r["synthetic"] for r in data["boards"][1]["rows"])


def test_an_only_failed_database_names_its_failures(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    db.insert_many([result(k, [], status="error", error=f"CUDA out of memory\nmore {k}", f1_mean=None,
                           accuracy=[], config_hash="e" * 12) for k in (1, 2)])
    [board] = lb.leaderboards_from_db(db.path, published=False)
    assert board.rows == [] and board.notes == ["2 failed fold run(s) (status=error) not shown:",
                                                "  resnet18 + wce fold 1 seed 0 (cfg eeeeeeee): CUDA out of memory",
                                                "  resnet18 + wce fold 2 seed 0 (cfg eeeeeeee): CUDA out of memory"]


# ---- confidence intervals from stored predictions --------------------------------------------
def stored_fold(tmp_path, fold, seed=0, config_hash="a" * 12):
    """A result row whose predictions.npz holds 4 test subjects of 10 frames each."""
    from austack.runs.rundir import save_predictions

    rng = np.random.default_rng(fold * 10 + seed)
    labels = rng.integers(0, 2, (40, 3))
    probs = labels * 0.3 + rng.random((40, 3)) * 0.6     # imperfect: F1 well inside (0, 1)
    subjects = np.repeat([f"S{fold}{i}" for i in range(4)], 10)
    run_dir = tmp_path / f"f{fold}s{seed}"
    run_dir.mkdir()
    path, sha = save_predictions(run_dir, {"test": (probs, labels, np.arange(40))}, {"test": subjects}, AUS,
                                 [0.5] * 3)
    from austack.metrics import evaluate
    f1 = [float(x) for x in evaluate(probs, labels, AUS, [0.5] * 3).f1]
    return result(fold, f1, seed=seed, config_hash=config_hash, predictions=str(path), predictions_sha256=sha)


def test_ci_comes_from_the_stored_predictions(tmp_path):
    from austack.results.rescore import interval_for_rows

    rows = [stored_fold(tmp_path, k) for k in (1, 2, 3)]
    _, [row] = only(lb.build_leaderboards(rows, ci=True))
    want = interval_for_rows(rows)
    assert row.ci.avg == pytest.approx((100 * want.mean_f1.estimate, 100 * want.mean_f1.low, 100 * want.mean_f1.high))
    assert row.ci.avg[0] == pytest.approx(row.avg) and row.ci.avg[1] < row.avg < row.ci.avg[2]
    assert set(row.ci.per_au) == set(AUS) and row.ci.n_subjects == 12
    board = lb.build_leaderboards(rows, ci=True)[0]
    rec = json.loads(lb.to_json([board]))["boards"][0]["rows"][0]
    assert rec["ci"]["avg"]["low"] == pytest.approx(row.ci.avg[1], abs=1e-4)
    assert [x is not None for x in rec["ci"]["per_au"]] == [a in AUS for a in board.aus]
    assert (rec["n_folds"], rec["n_seeds"], rec["config_hash"], rec["store_checksum"]) == (3, 1, "a" * 12, "c")
    text = lb.to_text([board])
    assert "95% CI" in text and f"{row.ci.avg[1]:.1f}–{row.ci.avg[2]:.1f}" in text


def test_rows_without_predictions_show_no_ci_and_say_why(tmp_path):
    rows = [stored_fold(tmp_path, k) for k in (1, 2, 3)] + [result(k, [0.2] * 3, config_hash="b" * 12)
                                                            for k in (1, 2, 3)]
    board, measured = only(lb.build_leaderboards(rows, ci=True))
    without = next(r for r in measured if r.config_hash == "b" * 12)
    assert without.ci is None and "no stored predictions" in without.ci_missing
    assert any(n.startswith(f"no CI for #{without.rank} resnet18 + wce") for n in board.notes)
    assert json.loads(lb.to_json([board]))["boards"][0]["rows"][without.rank - 1]["ci"] is None
    assert f"| {lb.MISSING} |" in lb.to_markdown([board])


def test_json_ends_with_a_newline(board):
    assert lb.to_json([board]).endswith("}\n")


# ---- terminal width ----------------------------------------------------------------------------
def wide_board(ci=False):
    """12 AUs, long method names, sds, and (optionally) a CI column: the widest realistic board."""
    aus = list(PROTO.aus)
    rows = [result(k, [0.123 * ((k + i) % 8) for i in range(12)], aus=aus, loss=loss, seed=s,
                   config_hash=h * 12, loss_options={"tau": 0.5, "p": "(0.25,0.25,0.5,0)"})
            for k in (1, 2, 3) for s in (0, 1) for loss, h in (("aunce.reference", "a"), ("wce", "b"))]
    pubs = [FakePublished("MEGraph (one stage) + AUNCE", 62.3, tuple(range(50, 62)), aus=tuple(aus)),
            FakePublished("AUNCE p=(0.25,0.25,0.5,0)", 60.1, tuple(range(40, 52)), aus=tuple(aus))]
    [board] = lb.build_leaderboards(rows, pubs)
    if ci:   # as if computed: the widest CI cell
        board.rows = [r if r.kind != lb.MEASURED else
                      dataclasses.replace(r, ci=lb.RowCI((55.5, 100.0, 100.0), {}, 10, 100, 0.95))
                      for r in board.rows]
    return board


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("per_au", [False, True])
def test_terminal_tables_fit_the_width_without_cutting_numbers(width, per_au):
    board = wide_board(ci=True)
    text = lb.to_text([board], width=width, per_au=per_au)
    assert max(map(len, text.splitlines())) <= width
    assert "…" not in text
    if per_au:
        for a in PROTO.aus:
            assert re.search(rf"\bAU{a}\b", text)
        m = board.of_kind(lb.MEASURED)[0]
        for a in PROTO.aus:
            assert f"{m.f1[a]:.1f}" in text
    assert "100.0–100.0" in text and "3/3" in text


def test_a_wider_terminal_needs_fewer_per_au_tables():
    board = wide_board()
    at80 = lb.to_text([board], width=80, per_au=True).count("F1 per AU")
    at200 = lb.to_text([board], width=200, per_au=True).count("F1 per AU")
    assert at80 > at200 == 2                                   # one per kind when everything fits
