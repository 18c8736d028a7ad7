"""Content digests of a store: per session and column, and the store's identity.

A column's digest is sha256 over its rows in order: numbers as their little-endian bytes in
the stored dtype (C order), strings and image rows each as an 8-byte little-endian length and
then the bytes (UTF-8 for strings). The identity hashes the settings that give the numbers
their meaning (dataset, AUs, protocol id and hash, alignment, image encoding) and every
session's name and column digests, so two stores that differ in one stored value differ.
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable

import numpy as np

from ._schema import StoreSettings

IDENTITY_VERSION = 1
STRING_COLUMNS = ("subject", "session", "split")
IMAGE_COLUMN = "images"


def digest_columns(with_intensities: bool) -> tuple[str, ...]:
    """The digested columns, in the order of the `column_sha256` dataset."""
    cols = ("images", "labels", "landmarks", "matrix", "face", "landmark_origin", "frame",
            "subject", "session", "split")
    return cols + (("intensities",) if with_intensities else ())


def _length_prefixed(h, rows: Iterable[bytes]) -> None:
    for b in rows:
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)


class ColumnHasher:
    """sha256 of each column of one session, fed in row order a block at a time."""

    def __init__(self, columns: Iterable[str]):
        self.h = {c: hashlib.sha256() for c in columns}

    def update(self, name: str, values) -> None:
        h = self.h[name]
        if name == IMAGE_COLUMN:
            _length_prefixed(h, (np.ascontiguousarray(r, dtype=np.uint8).tobytes() for r in values))
        elif name in STRING_COLUMNS:
            _length_prefixed(h, (_utf8(v) for v in values))
        else:
            a = np.asarray(values)
            h.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())

    def hexdigests(self) -> list[str]:
        return [h.hexdigest() for h in self.h.values()]


def _utf8(v) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode("utf-8")


def store_identity_of(settings: StoreSettings, sessions: Iterable[tuple[str, str]], columns: list[str],
                      digests) -> str:
    """The identity from the settings and the (n_sessions, n_columns) digest table."""
    h = hashlib.sha256()
    head = ["austack-store-identity", IDENTITY_VERSION, settings.dataset, list(settings.aus),
            settings.protocol, settings.protocol_hash, settings.alignment, settings.image_encoding,
            settings.jpeg_quality if settings.image_encoding == "jpeg" else None, list(columns)]
    h.update(json.dumps(head, sort_keys=True).encode())
    for (subject, session), row in zip(sessions, digests):
        _length_prefixed(h, [_utf8(subject), _utf8(session), *(_utf8(d) for d in row)])
    return h.hexdigest()
