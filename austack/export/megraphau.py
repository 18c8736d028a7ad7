"""ME-GraphAU's list files (also read by AUNCE, MDHR and OpenFace-3.0's AU training).

    OUT/img/<face>                           F001/T1/2440.jpg, SN002/0.png (see `image_name`)
    OUT/list/<DS>_{train,test}_img_path_fold<k>.txt    one path per line, relative to img/
    OUT/list/<DS>_{train,test}_label_fold<k>.txt       space-separated integers, protocol AU order
    OUT/list/<DS>_train_AU_relation_fold<k>.txt        N*N integers 2*y_j + y_k per training frame
    OUT/list/<DS>_weight_fold<k>.txt, <DS>_train_weight_fold<k>.txt, <DS>_test_weight_fold<k>.txt
                                             one tab-separated line of AU weights (training frames)
    OUT/img_256x256, OUT/list_256x256        AUNCE's folder names: links to img/ and list/

Labels are as read: BP4D keeps its unknown code 9; DISFA's occurrence is intensity >= 2.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..protocols import Protocol
from ..store import Store
from ._common import (ExportReport, FaceWriter, au_weights, ds_name, fold_rows, format_ints, image_names,
                      sidecar_doc, store_geometry, write_lines, write_sidecar)

UNKNOWN_DEFAULT = 9   # BP4D's code; written for any dataset whose protocol names no unknown code
AUNCE_ALIASES = {"img_256x256": "img", "list_256x256": "list"}


def unknown_code(protocol: Protocol) -> int:
    return int(protocol.label.unknown_codes[0]) if protocol.label.unknown_codes else UNKNOWN_DEFAULT


def encode(labels: np.ndarray, code: int) -> np.ndarray:
    """Stored labels (1/0/-1) back to the dataset's raw codes: -1 becomes `code`."""
    return np.where(labels < 0, code, labels).astype(np.int64)


def relation(y: np.ndarray) -> np.ndarray:
    """Per frame the N x N values 2*y_j + y_k, flattened row-major (j slow, k fast)."""
    return (2 * y[:, :, None] + y[:, None, :]).reshape(len(y), -1)


def _link(out: Path, alias: str, target: str) -> None:
    link = out / alias
    if link.is_symlink() or link.exists():
        if link.is_symlink() and os.readlink(link) == target:
            return
        link.unlink()
    link.symlink_to(target, target_is_directory=True)


def export(store: Store, protocol: Protocol, out: Path, *, folds: Sequence[int] | None = None,
           progress: bool | None = None) -> ExportReport:
    ds, code = ds_name(store), unknown_code(protocol)
    names = image_names(store)
    faces = FaceWriter(store, out / "img", lambda i: names[i], progress)
    lists = out / "list"
    files: dict[str, list[str]] = {}
    fold_docs = []
    for f in fold_rows(store, protocol, folds):
        k = f.index
        written = []
        for split, rows in (("train", f.train), ("test", f.test)):
            faces.write(rows, f"fold {k} {split} faces")
            y = encode(store.labels[rows], code)
            written.append(write_lines(lists / f"{ds}_{split}_img_path_fold{k}.txt", [names[i] for i in rows]))
            written.append(write_lines(lists / f"{ds}_{split}_label_fold{k}.txt", format_ints(y)))
        y_train = encode(store.labels[f.train], code)
        written.append(write_lines(lists / f"{ds}_train_AU_relation_fold{k}.txt", format_ints(relation(y_train))))
        w = au_weights(store.labels[f.train], protocol.aus, f"fold {k} of {store.path}")
        line = ["\t".join(f"{x:f}" for x in w)]
        for name in (f"{ds}_weight_fold{k}.txt", f"{ds}_train_weight_fold{k}.txt", f"{ds}_test_weight_fold{k}.txt"):
            written.append(write_lines(lists / name, line))
        files[f"fold{k}"] = [str(p.relative_to(out)) for p in written]
        fold_docs.append(f.describe(store, unknown_labels=f.unknown_labels(store), weights=[float(x) for x in w]))
    for alias, target in AUNCE_ALIASES.items():
        _link(out, alias, target)
    doc = sidecar_doc(
        store, protocol, "megraphau",
        unknown=f"{code} (the dataset's raw unknown code; the stored -1)",
        geometry=store_geometry(store), folds=fold_docs, files=files,
        extra={"image_root": "img", "list_root": "list", "aliases": AUNCE_ALIASES,
               "weights": "w_i = (1/r_i) / sum(1/r) * N, r_i the AU's rate among training frames whose label "
                          "is known; the test_weight file holds the same training weights (nothing is "
                          "taken from the test split)",
               "relation": "per training frame, N*N integers 2*y_j + y_k (j slow, k fast) of the label line"})
    write_sidecar(out, doc)
    return ExportReport("megraphau", out, doc)
