"""The contract every registered reader keeps (base.Reader): one bad label file costs its session,
reported once as `unreadable` with the file, and never the run or the other sessions; options
are checked one way."""
from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from austack.datasets import READERS, AnomalyReport, create_reader, list_readers
from austack.errors import ConfigError
from austack.synth import list_layouts, synthesize

# The readers austack ships (a test may register its own fake reader, with no layout).
SHIPPED = [name for name in list_readers() if READERS.get(name).__module__.startswith("austack.")]


def test_every_shipped_reader_has_a_synthetic_layout():
    assert set(SHIPPED) == {"bp4d", "bp4d+", "disfa", "gft", "affwild2"}
    assert set(SHIPPED) <= set(list_layouts())


@pytest.fixture(scope="module", params=SHIPPED)
def synthetic(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param.replace("+", "plus"))
    synthesize(root, request.param, subjects=3, sessions=1, frames=4, size=96)
    return request.param, root


def label_file_of(ref) -> Path:
    """The file to corrupt: the label file, or for DISFA (a folder of AU files) its first one."""
    path = Path(ref.label_file)
    return sorted(path.glob("*_[aA][uU]1.txt"))[0] if path.is_dir() else path


def garbage(data: bytes) -> bytes:
    rng = random.Random(len(data))
    return b"\xff\xfe" + bytes(rng.randrange(256) for _ in range(max(64, len(data) // 2)))


def truncated(data: bytes) -> bytes:
    """Cut inside the header line (after a BOM, if any)."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    return data[:bom + 3]


CORRUPTIONS = {"garbage": garbage, "zero_bytes": lambda data: b"", "truncated": truncated}


def summary(record):
    return [(f.frame, f.source, f.labels.tolist(), None if f.landmarks is None else f.landmarks.tolist())
            for f in record.frames]


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_bad_label_file_costs_its_session_only(synthetic, corruption, tmp_path):
    dataset, original = synthetic
    if dataset == "disfa" and corruption == "truncated":
        pytest.skip("DISFA files have no header: a cut file is a short file (count_mismatch, "
                    "tested in test_disfa_cut_label_file_is_not_a_lost_session)")
    root = tmp_path / "raw"
    shutil.copytree(original, root)
    reader = create_reader(dataset, root)
    refs = reader.sessions()
    before = {(r.subject, r.session): summary(reader.read_session(r, AnomalyReport())) for r in refs}
    victim = refs[1]
    bad_file = label_file_of(victim)
    bad_file.write_bytes(CORRUPTIONS[corruption](bad_file.read_bytes()))

    report = AnomalyReport()
    record = reader.read_session(victim, report)
    assert (record.subject, record.session, record.frames) == (victim.subject, victim.session, [])
    assert [(a.kind, a.path, a.count) for a in report] == [("unreadable", str(bad_file), 1)]
    assert f"{victim.subject}/{victim.session} skipped" in report.items[0].detail
    assert "\n" not in report.items[0].detail
    for ref in refs:
        if ref != victim:
            assert summary(reader.read_session(ref, AnomalyReport())) == before[ref.subject, ref.session]
    # read_all goes on past the bad session, and so does a second reader on the same root
    records, all_report = create_reader(dataset, root).read_all()
    assert len(records) == len(refs) and all_report.counts()["unreadable"] >= 1


def test_disfa_cut_label_file_is_not_a_lost_session(tmp_path):
    root = tmp_path / "disfa"
    synthesize(root, "disfa", subjects=2, sessions=1, frames=4, size=96)
    reader = create_reader("disfa", root)
    ref = reader.sessions()[0]
    whole = len(reader.read_session(ref, AnomalyReport()).frames)
    au1 = label_file_of(ref)
    au1.write_bytes(au1.read_bytes()[:-3])          # the last line loses its intensity and newline
    report = AnomalyReport()
    record = reader.read_session(ref, report)
    assert len(record.frames) == whole > 1
    assert record.frames[-1].labels[0] == -1        # AU1 of the cut line is unknown, never guessed
    assert {a.kind for a in report} >= {"invalid_row", "count_mismatch"}
    assert all(a.path in (str(au1), str(au1.parent)) for a in report if a.kind != "missing_landmarks")


def test_unknown_option_names_the_known_ones(synthetic):
    dataset, root = synthetic
    known = [o.name for o in READERS.get(dataset).declared_options] + ["protocol"]
    with pytest.raises(ConfigError, match=rf"{re.escape(dataset)} reader: unknown option 'protocl'; did you mean "
                                          rf"'protocol'\? \(options are {', '.join(known)}\)"):
        create_reader(dataset, root, protocl="x")


def test_options_are_recorded_as_plain_data(synthetic):
    dataset, root = synthetic
    reader = create_reader(dataset, root)
    assert reader.options["protocol"] == reader.label_protocol.id == reader.protocol
    assert set(reader.options) == {o.name for o in reader.declared_options} | {"protocol"}
    assert all(v is None or isinstance(v, (str, int)) for v in reader.options.values())


def test_option_types_and_choices_are_checked():
    with pytest.raises(ConfigError, match=r"bp4d reader: frame_offset must be an integer, got True"):
        create_reader("bp4d", "/nonexistent", frame_offset=True)
    with pytest.raises(ConfigError, match=r"disfa reader: camera must be one of 'left', 'right', got 'up'"):
        create_reader("disfa", "/nonexistent", camera="up")
    with pytest.raises(ConfigError, match=r"gft reader: layout must be a string or PathLike or GFTLayout"):
        create_reader("gft", "/nonexistent", layout=3)


def test_read_all_empty_session_has_no_frames_in_a_summary(synthetic, tmp_path):
    """inspect reads an empty (skipped) session like any other: it counts, it adds no frames."""
    from austack.inspect import summarize_raw

    dataset, original = synthetic
    root = tmp_path / "raw"
    shutil.copytree(original, root)
    clean = summarize_raw(dataset, root)
    victim = create_reader(dataset, root).sessions()[0]
    label_file_of(victim).write_bytes(b"")
    broken = summarize_raw(dataset, root)
    lost = next(s for s in clean.subjects if s.subject == victim.subject).frames
    assert broken.frames == clean.frames - lost and broken.sessions == clean.sessions
    assert broken.anomalies.counts()["unreadable"] == 1
    assert np.isfinite(broken.rates()).any()
