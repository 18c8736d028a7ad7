"""Plain CSV lists (LibreFace, FG-Net and any loader that reads a table).

    OUT/img/<face>                       as for megraphau
    OUT/fold<k>/{train,test}.csv         header image_path,au1,au2,... then one row per frame:
                                         the absolute image path and 1 / 0 / -1 (unknown) per AU
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

from ..fileio import atomic_write_text
from ..protocols import Protocol
from ..store import Store
from ._common import (ExportReport, FaceWriter, fold_rows, image_names, sidecar_doc, store_geometry,
                      write_sidecar)


def header(aus: Sequence[int]) -> list[str]:
    return ["image_path", *(f"au{a}" for a in aus)]


def export(store: Store, protocol: Protocol, out: Path, *, folds: Sequence[int] | None = None,
           progress: bool | None = None) -> ExportReport:
    names = image_names(store)
    img = out / "img"
    faces = FaceWriter(store, img, lambda i: names[i], progress)
    files, fold_docs = {}, []
    for f in fold_rows(store, protocol, folds):
        written = []
        for split, rows in (("train", f.train), ("test", f.test)):
            faces.write(rows, f"fold {f.index} {split} faces")
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(header(protocol.aus))
            for i in rows:
                w.writerow([str(img / names[i]), *(int(v) for v in store.labels[i])])
            path = out / f"fold{f.index}" / f"{split}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(atomic_write_text(path, buf.getvalue()))
        files[f"fold{f.index}"] = [str(p.relative_to(out)) for p in written]
        fold_docs.append(f.describe(store))
    doc = sidecar_doc(store, protocol, "csv", unknown="-1", geometry=store_geometry(store), folds=fold_docs,
                      files=files, extra={"image_root": "img", "paths": "absolute"})
    write_sidecar(out, doc)
    return ExportReport("csv", out, doc)
