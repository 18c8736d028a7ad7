"""The results database: every `ResultRow` a benchmark produces, in one SQLite file.

Several `austack bench` processes may write to the same file at once (a grid split over
GPUs, or two terminals). SQLite in WAL mode lets readers and one writer proceed together;
every write is one short `BEGIN IMMEDIATE` transaction, so a writer takes the lock up front
and waits out the others (busy timeout) instead of failing half-way through.

Lists and dicts (`aus`, `f1`, `accuracy`, `loss_options`, `config`) are JSON text columns.
The layout is versioned: `schema_version` holds the version the file was brought to, and
`_MIGRATIONS[k]` takes a file from version k to k+1, so a newer austack upgrades an older
file in place and an older austack refuses a newer file instead of misreading it.
"""
from __future__ import annotations

import csv
import json
import os
import sqlite3
import time
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from ..errors import ResultsError
from .schema import ResultRow

_JSON_FIELDS = ("loss_options", "config", "aus", "f1", "accuracy", "thresholds", "provenance")
_BOOL_FIELDS = ("comparable", "synthetic")
STATUSES = ("ok", "error")
BUSY_TIMEOUT_S = 60.0

# One SQL script per step: _MIGRATIONS[0] creates version 1 from an empty file.
_MIGRATIONS: list[str] = [
    """
    CREATE TABLE results (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset         TEXT NOT NULL,
        protocol        TEXT NOT NULL,
        protocol_hash   TEXT NOT NULL,
        store           TEXT NOT NULL,
        store_checksum  TEXT NOT NULL,
        fold            INTEGER NOT NULL,
        backbone        TEXT NOT NULL,
        loss            TEXT NOT NULL,
        loss_options    TEXT NOT NULL,
        seed            INTEGER NOT NULL,
        epochs          INTEGER NOT NULL,
        config          TEXT NOT NULL,
        aus             TEXT NOT NULL,
        f1              TEXT NOT NULL,
        accuracy        TEXT NOT NULL,
        f1_mean         REAL,
        accuracy_mean   REAL,
        selected_on     TEXT NOT NULL,
        best_epoch      INTEGER,
        val_f1_mean     REAL,
        n_train         INTEGER NOT NULL,
        n_val           INTEGER NOT NULL,
        n_test          INTEGER NOT NULL,
        pretrained      TEXT,
        comparable      INTEGER NOT NULL,
        device          TEXT NOT NULL,
        austack_version TEXT NOT NULL,
        torch_version   TEXT NOT NULL,
        git_sha         TEXT,
        wall_s          REAL,
        images_per_s    REAL,
        peak_mem_mb     REAL,
        run_dir         TEXT,
        status          TEXT NOT NULL,
        error           TEXT,
        created         TEXT NOT NULL
    );
    CREATE INDEX results_lookup ON results (dataset, protocol, backbone, loss, status);
    """,
    """
    ALTER TABLE results ADD COLUMN config_hash TEXT NOT NULL DEFAULT '';
    ALTER TABLE results ADD COLUMN synthetic INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN label_noise REAL;
    ALTER TABLE results ADD COLUMN thresholds TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE results ADD COLUMN predictions TEXT;
    ALTER TABLE results ADD COLUMN predictions_sha256 TEXT;
    ALTER TABLE results ADD COLUMN detector TEXT;
    ALTER TABLE results ADD COLUMN provenance TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX results_identity ON results (config_hash, store_checksum, fold, seed, status);
    """,
    # cross-dataset rows: the source store that trained the detector, and the target split scored
    """
    ALTER TABLE results ADD COLUMN source_dataset TEXT NOT NULL DEFAULT '';
    ALTER TABLE results ADD COLUMN source_protocol TEXT NOT NULL DEFAULT '';
    ALTER TABLE results ADD COLUMN source_protocol_hash TEXT NOT NULL DEFAULT '';
    ALTER TABLE results ADD COLUMN source_store TEXT NOT NULL DEFAULT '';
    ALTER TABLE results ADD COLUMN source_store_checksum TEXT NOT NULL DEFAULT '';
    ALTER TABLE results ADD COLUMN test_split TEXT NOT NULL DEFAULT '';
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)
ROW_FIELDS = tuple(f.name for f in fields(ResultRow))


class ResultsDB:
    """Insert and query benchmark results in the SQLite file at `path`.

    The file (and its folder) is created on first use unless `create=False`, which makes a
    missing file an error: readers such as `austack leaderboard` should not leave empty
    databases behind. Use as a context manager or call `close()`.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True):
        self.path = Path(path).expanduser().resolve()
        if not self.path.exists():
            if not create:
                raise ResultsError(f"no results database at {self.path}; run `austack bench` to record "
                                   f"results there, or pass --db with the file it wrote", path=self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._connect()

    # ---- connection and schema -------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        # A connection must not cross fork(): a child reopens its own.
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _use_wal(conn)
            conn.row_factory = sqlite3.Row
            self._conn, self._pid = conn, os.getpid()
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise ResultsError(f"{self.path} is not a usable austack results database (SQLite: {e}); "
                               f"pass --db with another file or move this one away", path=self.path) from None
        return conn

    def _migrate(self) -> None:
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL)")
            current = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if current > SCHEMA_VERSION:
                raise ResultsError(f"results database {self.path} has schema version {current}, newer than this "
                                   f"austack understands ({SCHEMA_VERSION}); upgrade austack", path=self.path)
            for version in range(current, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version + 1, _now()))

    def _write(self) -> "_Transaction":
        return _Transaction(self._conn)

    @property
    def schema_version(self) -> int:
        return self._connect().execute("SELECT MAX(version) FROM schema_version").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __enter__(self) -> "ResultsDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- writing ---------------------------------------------------------------------------
    def insert(self, row: ResultRow) -> int:
        """Store one row; returns its id. Rows that contradict themselves are refused."""
        return self.insert_many([row])[0]

    def insert_many(self, rows: Iterable[ResultRow]) -> list[int]:
        """Store several rows in one transaction (all or none); returns their ids in order."""
        records = [_to_record(r) for r in rows]
        if not records:
            return []
        cols = list(records[0])
        sql = f"INSERT INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self._connect()
        with self._write() as conn:
            return [conn.execute(sql, [rec[c] for c in cols]).lastrowid for rec in records]

    # ---- reading ---------------------------------------------------------------------------
    def query(self, dataset: str | None = None, backbone: str | None = None, loss: str | None = None,
              protocol: str | None = None, status: str | None = "ok",
              include_noncomparable: bool = False) -> list[ResultRow]:
        """Rows matching every filter given, oldest first. `status=None` returns all statuses."""
        return [row for _, row in self.query_with_ids(dataset, backbone, loss, protocol, status,
                                                      include_noncomparable)]

    def query_with_ids(self, dataset: str | None = None, backbone: str | None = None, loss: str | None = None,
                       protocol: str | None = None, status: str | None = "ok",
                       include_noncomparable: bool = False) -> list[tuple[int, ResultRow]]:
        where, args = [], []
        for col, value in (("dataset", dataset), ("backbone", backbone), ("loss", loss),
                           ("protocol", protocol), ("status", status)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        if not include_noncomparable:
            where.append("comparable = 1")
        sql = "SELECT * FROM results" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        return [(rec["id"], _from_record(rec, self.path)) for rec in self._connect().execute(sql, args)]

    def insert_once(self, row: ResultRow) -> tuple[int, bool]:
        """Store an `ok` row unless one is recorded for its config hash, store, seed and fold
        (and, across datasets, its source store and target split): (row id, inserted). The
        check and the insert are one transaction, so two processes that finish the same fold at
        once still leave one row. Error rows are always stored."""
        rec = _to_record(row)
        cols = list(rec)
        sql = f"INSERT INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self._connect()
        with self._write() as conn:
            if row.status == "ok" and row.config_hash:
                found = conn.execute(
                    "SELECT id FROM results WHERE config_hash = ? AND store_checksum = ? AND seed = ? AND fold = ? "
                    "AND source_store_checksum = ? AND test_split = ? AND status = 'ok' ORDER BY id LIMIT 1",
                    (row.config_hash, row.store_checksum, int(row.seed), int(row.fold), row.source_store_checksum,
                     row.test_split)).fetchone()
                if found is not None:
                    return int(found[0]), False
            return conn.execute(sql, [rec[c] for c in cols]).lastrowid, True

    def check_writable(self) -> None:
        """Prove a row could be written now (a read-only file or folder fails here, before a
        run trains for hours and then cannot record its result)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO schema_version VALUES (-1, 'write probe')")
            conn.execute("ROLLBACK")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise ResultsError(f"cannot write the results database {self.path} (SQLite: {e}); pass --db with "
                               f"a writable file", path=self.path) from None

    def recorded(self, config_hash: str, store_checksum: str, seed: int, *, source_store_checksum: str = "",
                 test_split: str = "") -> dict[int, int]:
        """Fold -> row id of the `ok` rows already recorded for this config, store and seed (a
        cross-dataset row: `store_checksum` is its target, with its source store and split)."""
        sql = ("SELECT id, fold FROM results WHERE config_hash = ? AND store_checksum = ? AND seed = ? "
               "AND source_store_checksum = ? AND test_split = ? AND status = 'ok' ORDER BY id")
        rows = self._connect().execute(sql, (config_hash, store_checksum, int(seed), source_store_checksum,
                                             test_split))
        return {rec["fold"]: rec["id"] for rec in rows}

    def get(self, row_id: int) -> ResultRow:
        rec = self._connect().execute("SELECT * FROM results WHERE id = ?", (int(row_id),)).fetchone()
        if rec is None:
            raise ResultsError(f"results database {self.path} has no row {row_id}", path=self.path)
        return _from_record(rec, self.path)

    def count(self, status: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM results", []
        if status is not None:
            sql, args = sql + " WHERE status = ?", [status]
        return self._connect().execute(sql, args).fetchone()[0]

    def export_csv(self, dest: str | os.PathLike, rows: Iterable[tuple[int, ResultRow]] | None = None) -> Path:
        """Write rows (default: every row, any status) as CSV, one column per field.

        JSON columns stay JSON text, so the file loads back without loss; returns the path.
        """
        rows = list(self.query_with_ids(status=None, include_noncomparable=True) if rows is None else rows)
        dest = Path(dest).expanduser().resolve()
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=("id",) + ROW_FIELDS)
            writer.writeheader()
            for row_id, row in rows:
                rec = _to_record(row)
                writer.writerow({"id": row_id, **{k: "" if v is None else v for k, v in rec.items()}})
        return dest


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, *exc) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _use_wal(conn: sqlite3.Connection, tries: int = 50) -> None:
    """Switch the file to WAL once (the mode is stored in the file). Changing it needs the file
    to itself, which SQLite's busy timeout does not wait for: while another process creates or
    migrates the same new file, retry instead of failing."""
    for attempt in range(tries):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == tries - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check(row: ResultRow) -> None:
    where = f"result row ({row.dataset} {row.protocol} fold {row.fold} {row.backbone}+{row.loss})"
    if row.status not in STATUSES:
        raise ResultsError(f"{where} has status {row.status!r}; expected one of {', '.join(STATUSES)}")
    if row.status == "error" and not row.error:
        raise ResultsError(f"{where} has status 'error' but no error message; set `error`")
    if row.status == "ok":
        for name in ("f1", "accuracy"):
            values = getattr(row, name)
            if len(values) != len(row.aus):
                raise ResultsError(f"{where} has {len(values)} {name} values for {len(row.aus)} AUs; "
                                   f"give one per AU in `aus` order")
    if row.source_store_checksum and not row.test_split:
        raise ResultsError(f"{where} is a cross-dataset row without its target split; set `test_split`")
    if row.selected_on == "test":
        raise ResultsError(f"{where} chose its checkpoint on the test split; select on 'val'")


def _to_record(row: ResultRow) -> dict[str, Any]:
    _check(row)
    rec = row.to_dict()
    for name in _JSON_FIELDS:
        rec[name] = json.dumps(rec[name], sort_keys=True)
    for name in _BOOL_FIELDS:
        rec[name] = int(bool(rec[name]))
    rec["created"] = rec["created"] or _now()
    return rec


def _from_record(rec: sqlite3.Row, path: Path) -> ResultRow:
    values = {name: rec[name] for name in ROW_FIELDS}
    try:
        for name in _JSON_FIELDS:
            values[name] = json.loads(values[name])
    except (TypeError, json.JSONDecodeError) as e:
        raise ResultsError(f"results database {path}: row {rec['id']} has a malformed {name} column ({e})",
                           path=path) from None
    for name in _BOOL_FIELDS:
        values[name] = bool(values[name])
    return ResultRow(**values)
