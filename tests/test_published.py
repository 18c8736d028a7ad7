"""Published reference results: every row loads, types check, printed averages are verified."""
import csv
from pathlib import Path

import pytest

from austack._resources import baselines_dir
from austack.errors import ResultsError
from austack.protocols import load_protocol
from austack.published import avg_tolerance, load_published

FOLDER = baselines_dir() / "published"
# Rows whose printed average disagrees with their own per-AU values (errors in the source table).
KNOWN_MISMATCHES = {("II", "EAC-Net"), ("III", "EAC-Net"), ("III", "ROI"), ("VII", "Model C")}


def test_every_table_loads():
    rows = load_published()
    assert {r.table for r in rows} == {"II", "III", "IV", "V", "VI", "VII", "VIII"}
    counts = {t: sum(r.table == t for r in rows) for t in ("II", "III", "IV", "V", "VI", "VII", "VIII")}
    assert counts == {"II": 20, "III": 20, "IV": 14, "V": 6, "VI": 12, "VII": 5, "VIII": 10}


def test_every_data_row_of_every_csv_is_loaded():
    n_csv = 0
    for path in FOLDER.glob("*.csv"):
        with path.open() as f:
            n_csv += sum(1 for r in csv.DictReader(f) if r.get("statistic", "mean") == "mean")
    assert n_csv == len(load_published())


def test_rows_match_their_printed_average_or_are_flagged():
    for r in load_published():
        if all(v is not None for v in r.f1):
            mean = sum(r.f1) / len(r.f1)
            ok = abs(mean - r.avg) <= 0.1 + 1e-9 or (r.table == "IV" and abs(mean - r.avg) <= 0.55)
            assert ok != bool(r.flags), (r.table, r.method, mean, r.avg)
    assert {(r.table, r.method) for r in load_published() if r.flags} == KNOWN_MISMATCHES


def test_aus_follow_the_protocols():
    for r in load_published():
        assert r.aus == load_protocol(r.protocol).aus


def test_aunce_headline_numbers():
    by = {(r.table, r.method): r for r in load_published()}
    assert by[("II", "AUNCE")].avg == 66.1 and by[("II", "AUNCE")].avg_sd == 0.17
    assert by[("III", "AUNCE")].avg == 66.4 and by[("IV", "AUNCE")].avg == 63.0
    assert by[("V", "AUNCE")].avg == 62.2
    assert by[("VII", "Model E")].f1 == by[("II", "AUNCE")].f1  # Table VII's full model is Table II's row
    enc = {(r.method, r.extra["loss"]): r for r in load_published(kind="encoders")}
    assert enc[("ResNet50", "AUNCE")].avg == 59.7 and enc[("ResNet50", "AUNCE")].accuracy == 77.0


def test_every_row_has_a_citation():
    assert all(r.citation and r.source for r in load_published())


def test_rounding_tolerance():
    assert avg_tolerance(["1.0", "2.0"], "1.5") == pytest.approx(0.1)
    assert avg_tolerance(["44", "46"], "42.8") == pytest.approx(0.55)


def _copy_tables(tmp_path: Path) -> Path:
    dest = tmp_path / "published"
    dest.mkdir(parents=True)
    for p in FOLDER.iterdir():
        if p.is_file():
            (dest / p.name).write_bytes(p.read_bytes())
    return dest


def test_malformed_value_names_file_and_line(tmp_path):
    dest = _copy_tables(tmp_path)
    f = dest / "table3_disfa.csv"
    f.write_text(f.read_text().replace("43.9", "4x.9"))
    with pytest.raises(ResultsError, match=r"table3_disfa.csv:4: column AU1 is '4x.9'"):
        load_published(folder=dest)


def test_out_of_range_and_wrong_aus(tmp_path):
    dest = _copy_tables(tmp_path)
    f = dest / "table4_gft.csv"
    f.write_text(f.read_text().replace("AU24,Avg", "AU25,Avg"))
    with pytest.raises(ResultsError, match="differ from gft-official@v1"):
        load_published(folder=dest)
    dest2 = _copy_tables(tmp_path / "b")
    f = dest2 / "table5_affwild2.csv"
    f.write_text(f.read_text().replace("96.1", "196.1"))
    with pytest.raises(ResultsError, match="outside"):
        load_published(folder=dest2)
