"""FMAE / FMAE-IAT's JSON-lines lists.

    OUT/img/<face>                                 as for megraphau (F001/T1/2440.jpg, SN002/0.png)
    OUT/<DS>_train_fold<k>.json, OUT/<DS>_test_fold<k>.json
        one JSON object per line: {"img_path": "F001/T1/2440.jpg", "AUs": [...]}, one entry per AU
        in protocol order: the AU's number when active, else 999 (an unknown label too, counted)

`img_path` is relative to OUT/img/, as FMAE's own lists are: its loader opens
`root_path + img_path` (so `root_path` is OUT/img/ with its slash) and its list tools take the
subject as the path's first component (`F001`, `SN002`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..protocols import Protocol
from ..store import Store
from ._common import (ExportReport, FaceWriter, ds_name, fold_rows, image_names, sidecar_doc, store_geometry,
                      write_lines, write_sidecar)

INACTIVE = 999


def entries(labels: np.ndarray, aus: Sequence[int]) -> list[list[int]]:
    a = np.asarray(aus, np.int64)
    return np.where(labels == 1, a, INACTIVE).tolist()


def export(store: Store, protocol: Protocol, out: Path, *, folds: Sequence[int] | None = None,
           progress: bool | None = None) -> ExportReport:
    ds = ds_name(store)
    names = image_names(store)
    img = out / "img"
    faces = FaceWriter(store, img, lambda i: names[i], progress)
    files, fold_docs = {}, []
    for f in fold_rows(store, protocol, folds):
        written = []
        for split, rows in (("train", f.train), ("test", f.test)):
            faces.write(rows, f"fold {f.index} {split} faces")
            lines = [json.dumps({"img_path": names[i], "AUs": e})
                     for i, e in zip(rows, entries(store.labels[rows], protocol.aus))]
            written.append(write_lines(out / f"{ds}_{split}_fold{f.index}.json", lines))
        files[f"fold{f.index}"] = [str(p.relative_to(out)) for p in written]
        fold_docs.append(f.describe(store, unknown_written_as_999=f.unknown_labels(store)))
    doc = sidecar_doc(store, protocol, "fmae", unknown=f"{INACTIVE} (as inactive; counted per fold)",
                      geometry=store_geometry(store), folds=fold_docs, files=files,
                      extra={"image_root": "img", "paths": "relative to image_root (root_path = OUT/img/)",
                             "subject_in_path": "the path's first component"})
    write_sidecar(out, doc)
    return ExportReport("fmae", out, doc)
