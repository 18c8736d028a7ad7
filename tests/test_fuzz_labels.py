"""Label-file fuzzer: mutate a valid label file many ways and compare the reader with a strict oracle.

For each of the four label formats (BP4D AU_OCC csv, DISFA per-AU txt, GFT AU csv, Aff-Wild2 AU
txt) a small synthetic layout is written once; each case mutates one label file (odd cells,
extra or missing cells, duplicated / swapped / deleted / blank lines, truncation, binary
garbage, a BOM, CRLF or CR line ends) and reads its session back. The oracle below computes,
from the mutated bytes alone and by the rules of docs/datasets.md, which frames must come out
with which labels, and which rows and cells must be reported. It shares no code with the
readers: a misunderstanding would have to be made twice to pass.

Any traceback, any frame or label that differs, or any dropped row or unknown cell that is not
counted in the report fails the test. Set AUSTACK_FUZZ_SEED to explore other cases.
"""
from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import pytest

from austack.datasets import AnomalyReport, create_reader
from austack.synth import synthesize

CASES = 60                       # per format and run: 240 in all
SEED = int(os.environ.get("AUSTACK_FUZZ_SEED", "20240611"))
BOM = "\ufeff"
INT64_MAX = 2 ** 63 - 1
ODD_CELLS = ["0.5", "1.7", "²", "1e400", "inf", "nan", "-", "", "9" * 25, "9", " 1", "1 ", "-1", "0", "1",
             "+1", "01", "１", "\u00a0", "x", "-0", "2", "5", "6", "\t0", str(INT64_MAX), str(INT64_MAX + 1)]


# --- the oracle: the rules, written out again ----------------------------------------------------------

def integer(cell: str, signed: bool) -> int | None:
    text = cell.strip(" \t")
    pattern = r"-?[0-9]+" if signed else r"[0-9]+"
    if re.fullmatch(pattern, text) is None or not -INT64_MAX - 1 <= int(text) <= INT64_MAX:
        return None
    return int(text)


def blank(line: str, sep: str = ",") -> bool:
    return all(not c.strip() for c in line.split(sep))


def text_lines(data: bytes) -> list[str] | None:
    """The file's lines, or None when it is not UTF-8 (the session must then be unreadable)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.removeprefix(BOM)
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


@dataclass
class Expected:
    unreadable: bool = False
    frames: dict[int, list[int]] = field(default_factory=dict)   # frame -> labels, in frame order
    intensities: dict[int, list[int]] = field(default_factory=dict)
    invalid_rows: int = 0
    unknown_cells: int = 0
    out_of_order: bool = False


def frame_rows(rows: list[list[str]], width: int, frame_col: int, out: Expected) -> list[tuple[int, list[str]]]:
    """Rows of `width` cells with a strict, first-seen frame number, sorted by frame."""
    kept: dict[int, list[str]] = {}
    for cells in rows:
        frame = integer(cells[frame_col], signed=False) if len(cells) == width else None
        if frame is None or frame in kept:
            out.invalid_rows += 1
        else:
            kept[frame] = cells
    out.out_of_order = list(kept) != sorted(kept)
    return sorted(kept.items())


def occurrence(cell: str, codes: dict[int, int], out: Expected) -> int:
    value = integer(cell, signed=True)
    if value not in codes:
        out.unknown_cells += 1
        return -1
    return codes[value]


def oracle_table(data: bytes, header: str, aus, codes, frame_ok) -> Expected:
    """BP4D and GFT: a header, then one row per frame with the frame number in column 0."""
    lines = text_lines(data)
    out = Expected()
    if lines is None:
        return Expected(unreadable=True)
    lines = [line for line in lines if not blank(line)]
    assert lines[0] == header, "the fuzzer never mutates the header"
    names = [c.strip() for c in header.split(",")]
    if names == [str(i) for i in range(len(names))]:
        columns = list(aus)                                   # BP4D legacy: column N is AU N
    else:
        columns = [names.index(f"AU{a}") if f"AU{a}" in names else names.index(str(a), 1) for a in aus]
    for frame, cells in frame_rows([line.split(",") for line in lines[1:]], len(names), 0, out):
        labels = [occurrence(cells[c], codes, out) for c in columns]
        if frame_ok(frame):
            out.frames[frame] = labels
    return out


def oracle_affwild2(data: bytes, aus, header_aus, crop_exists) -> Expected:
    lines = text_lines(data)
    if lines is None or not lines or lines[0].strip() != ",".join(f"AU{a}" for a in header_aus):
        return Expected(unreadable=True)
    out = Expected()
    rows = lines[1:]
    while rows and blank(rows[-1]):
        rows.pop()
    for frame, line in enumerate(rows, start=1):
        cells = line.split(",")
        if len(cells) != len(header_aus):
            out.invalid_rows += 1
            continue
        if all(integer(c, True) == -1 for c in cells):
            out.invalid_rows += 1                             # not annotated
            continue
        labels = [occurrence(cells[header_aus.index(a)], {0: 0, 1: 1}, out) for a in aus]
        if crop_exists(frame):
            out.frames[frame] = labels
    return out


def oracle_disfa(data: bytes, au_index: int, others: dict[int, list[int]], n_au: int, video_frames: int) -> Expected:
    """`others`: frame -> intensities of the untouched AU files (None in the mutated AU's place)."""
    lines = text_lines(data)
    if lines is None or all(blank(line) for line in lines):
        return Expected(unreadable=True)
    out = Expected()
    mutated = {}
    for frame, cells in frame_rows([line.split(",") for line in lines if not blank(line)], 2, 0, out):
        value = integer(cells[1], signed=True)
        if value is None or not 0 <= value <= 5:
            out.unknown_cells += 1
            value = -1
        mutated[frame] = value
    for frame in sorted(set(others) | set(mutated)):
        intensities = list(others.get(frame, [-1] * n_au))
        intensities[au_index] = mutated.get(frame, -1)
        if 1 <= frame <= video_frames:
            out.intensities[frame] = intensities
            out.frames[frame] = [-1 if v < 0 else int(v >= 2) for v in intensities]
    return out


# --- mutations -------------------------------------------------------------------------------------

def mutate(original: bytes, rng: random.Random, header_lines: int) -> tuple[bytes, list[str]]:
    """A mutated copy of a label file and the names of the mutations applied."""
    bom = original.startswith(BOM.encode())
    text = original.decode("utf-8").removeprefix(BOM)
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    head, data = lines[:header_lines], lines[header_lines:]
    done = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(LINE_OPS)
        if data:
            data = op(data, rng)
            done.append(op.__name__)
    style = rng.random()
    if style < 0.15 and not bom:
        bom = True
        done.append("bom")
    if style > 0.85:
        newline = rng.choice(["\r\n", "\r"])
        done.append(f"newline {newline!r}")
    out = ((BOM if bom else "") + newline.join(head + data) + newline).encode("utf-8")
    end = rng.random()
    if end < 0.08:
        cut = len(((BOM if bom else "") + newline.join(head) + newline).encode("utf-8"))
        out = out[:rng.randint(max(1, cut), len(out))]
        done.append("truncate")
    elif end < 0.12:
        at = rng.randrange(len(out))
        out = out[:at] + b"\xff" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 20))) + out[at:]
        done.append("binary garbage")
    elif end < 0.13:
        out = b"\xff\xfe" + bytes(rng.randrange(256) for _ in range(200))
        done.append("all garbage")
    return out, done


def odd_cell(data, rng):
    i = rng.randrange(len(data))
    cells = data[i].split(",")
    cells[rng.randrange(len(cells))] = rng.choice(ODD_CELLS)
    return data[:i] + [",".join(cells)] + data[i + 1:]


def extra_cell(data, rng):
    i = rng.randrange(len(data))
    cells = data[i].split(",")
    cells.insert(rng.randrange(len(cells) + 1), rng.choice(["0", "1", ""]))
    return data[:i] + [",".join(cells)] + data[i + 1:]


def missing_cell(data, rng):
    i = rng.randrange(len(data))
    cells = data[i].split(",")
    del cells[rng.randrange(len(cells))]
    return data[:i] + [",".join(cells)] + data[i + 1:]


def duplicate_line(data, rng):
    return _insert(data, rng.randrange(len(data) + 1), data[rng.randrange(len(data))])


def swap_lines(data, rng):
    i, j = rng.randrange(len(data)), rng.randrange(len(data))
    data = list(data)
    data[i], data[j] = data[j], data[i]
    return data


def delete_line(data, rng):
    i = rng.randrange(len(data))
    return data[:i] + data[i + 1:]


def blank_line(data, rng):
    return _insert(data, rng.randrange(len(data) + 1), rng.choice(["", " ", ","]))


def _insert(data, at, line):
    return data[:at] + [line] + data[at:]


LINE_OPS = [odd_cell, odd_cell, odd_cell, extra_cell, missing_cell, duplicate_line, swap_lines, delete_line,
            blank_line]


# --- one layout per format, written once -----------------------------------------------------------

@dataclass
class Format:
    dataset: str
    root: Path
    reader: object
    ref: object
    label_file: Path
    header_lines: int
    expect: object           # bytes -> Expected

    def read(self, data: bytes):
        self.label_file.write_bytes(data)
        report = AnomalyReport()
        return self.reader.read_session(self.ref, report), report


def video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def bp4d_format(root: Path) -> Format:
    synthesize(root, "bp4d", subjects=1, sessions=2, frames=8, size=96)
    reader = create_reader("bp4d", root)
    ref = reader.sessions()[1]
    label = Path(ref.label_file)
    header = label.read_bytes().decode("utf-8").removeprefix(BOM).splitlines()[0]
    jpgs = {int(p.stem) for p in (reader.frames_dir / ref.subject / ref.session).glob("*.jpg")}
    aus = reader.label_protocol.aus
    return Format("bp4d", root, reader, ref, label, 1,
                  lambda data: oracle_table(data, header, aus, {0: 0, 1: 1, 9: -1}, jpgs.__contains__))


def gft_format(root: Path) -> Format:
    synthesize(root, "gft", subjects=1, sessions=1, frames=8, size=96)
    reader = create_reader("gft", root)
    ref = reader.sessions()[0]
    label = Path(ref.label_file)
    header = label.read_text().splitlines()[0]
    n = video_frames(root / "videos" / f"{ref.subject}.avi")
    return Format("gft", root, reader, ref, label, 1,
                  lambda data: oracle_table(data, header, reader.label_protocol.aus, {0: 0, 1: 1, 9: -1},
                                            lambda f: 1 <= f <= n))


def affwild2_format(root: Path) -> Format:
    synthesize(root, "affwild2", subjects=1, sessions=1, frames=8, size=96)
    reader = create_reader("affwild2", root)
    ref = reader.sessions()[0]
    crops = root / "cropped_aligned" / ref.subject
    header_aus = (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
    return Format("affwild2", root, reader, ref, Path(ref.label_file), 1,
                  lambda data: oracle_affwild2(data, reader.label_protocol.aus, header_aus,
                                               lambda f: (crops / f"{f:05d}.jpg").is_file()))


def disfa_format(root: Path) -> Format:
    synthesize(root, "disfa", subjects=1, sessions=1, frames=8, size=96)
    reader = create_reader("disfa", root)
    ref = reader.sessions()[0]
    aus = reader.label_protocol.aus
    files = {int(re.search(r"_au(\d+)\.txt$", p.name, re.I)[1]): p for p in Path(ref.label_file).iterdir()}
    au_index = 1                                  # mutate AU2's file
    others: dict[int, list[int]] = {}
    for j, au in enumerate(aus):
        for line in files[au].read_text(encoding="utf-8-sig").splitlines():
            frame, value = map(int, line.split(","))
            others.setdefault(frame, [-1] * len(aus))[j] = value if j != au_index else -1
    n = video_frames(next((root / "Videos_LeftCamera").iterdir()))
    return Format("disfa", root, reader, ref, files[aus[au_index]], 0,
                  lambda data: oracle_disfa(data, au_index, others, len(aus), n))


BUILDERS = {"bp4d": bp4d_format, "disfa": disfa_format, "gft": gft_format, "affwild2": affwild2_format}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def fmt(request, tmp_path_factory):
    return BUILDERS[request.param](tmp_path_factory.mktemp(f"fuzz_{request.param}"))


def check(fmt: Format, data: bytes) -> list[str]:
    """What the reader got wrong on `data` (empty: nothing)."""
    want = fmt.expect(data)
    try:
        record, report = fmt.read(data)
    except Exception as e:        # noqa: BLE001  (any traceback is a failure, reported with the case)
        return [f"raised {type(e).__name__}: {e}"]
    counts = report.counts()
    if want.unreadable:
        kinds = [(a.kind, a.path) for a in report]
        ok = record.frames == [] and kinds == [("unreadable", str(fmt.label_file))]
        return [] if ok else [f"expected one unreadable anomaly and no frames, got {kinds}"]
    problems = []
    got = {f.frame: f.labels.tolist() for f in record.frames}
    if [f.frame for f in record.frames] != list(want.frames):
        problems.append(f"frames {list(got)} != {list(want.frames)}")
    elif got != want.frames:
        problems.append(f"labels {got} != {want.frames}")
    if want.intensities:
        got_i = {f.frame: f.intensities.tolist() for f in record.frames}
        if got_i != want.intensities:
            problems.append(f"intensities {got_i} != {want.intensities}")
    for kind, n in (("invalid_row", want.invalid_rows), ("unknown_code", want.unknown_cells),
                    ("out_of_order", int(want.out_of_order)), ("unreadable", 0)):
        if counts[kind] != n:
            problems.append(f"{kind}: reported {counts[kind]}, expected {n}")
    return problems


def test_fuzzed_label_files_are_read_strictly(fmt):
    original = fmt.label_file.read_bytes()
    assert not check(fmt, original), "the unmutated file must read as the oracle says"
    rng = random.Random(f"{SEED}-{fmt.dataset}")
    failures, seen = [], set()
    try:
        for case in range(CASES):
            data, done = mutate(original, rng, fmt.header_lines)
            seen.update(done)
            problems = check(fmt, data)
            if problems:
                failures.append(f"case {case} ({', '.join(done)}): {'; '.join(problems)}\n{data[:400]!r}")
    finally:
        fmt.label_file.write_bytes(original)
    assert not failures, f"{len(failures)} of {CASES} cases differ (seed {SEED}):\n" + "\n".join(failures[:5])
    assert len(seen) >= 8, f"only {sorted(seen)} were exercised"


def test_every_odd_cell_value_in_every_label_column(fmt):
    """Not random: each odd value in each label cell of the first data row."""
    original = fmt.label_file.read_bytes()
    lines = original.decode("utf-8").removeprefix(BOM).splitlines()
    row = fmt.header_lines
    first_label = 0 if fmt.dataset == "affwild2" else 1
    failures, cases = [], 0
    try:
        for col in range(first_label, len(lines[row].split(","))):
            for value in ODD_CELLS:
                cells = lines[row].split(",")
                cells[col] = value
                data = "\n".join(lines[:row] + [",".join(cells)] + lines[row + 1:]) + "\n"
                cases += 1
                problems = check(fmt, data.encode("utf-8"))
                if problems:
                    failures.append(f"column {col} = {value!r}: {'; '.join(problems)}")
    finally:
        fmt.label_file.write_bytes(original)
    assert cases >= len(ODD_CELLS) and not failures, "\n".join(failures[:5])
