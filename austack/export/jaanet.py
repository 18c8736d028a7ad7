"""PyTorch-JAANet's list files, with faces re-aligned by its own parameters.

    OUT/imgs/<face>                              200 x 200 faces (box_enlarge 2.9), .jpg
    OUT/list/<DS>_combine_<a>_<b>_{path,land,biocular,AUoccur,weight}.txt   a fold's training parts
    OUT/list/<DS>_part<k>_{path,land,biocular,AUoccur}.txt                  a fold's test part
    OUT/list/reflect_49.txt                      the 1-based mirror permutation of the 49 points

`_path` lines are absolute (its loader opens them as given); `_land` holds 98 tab-separated
floats x1 y1 ... x49 y49 in the 200 x 200 face; `_biocular` the squared distance between the
means of 1-based landmarks 20-25 and 26-31; `_AUoccur` space-separated 0/1 (an unknown label
is written 0 and counted). The re-alignment is the same closed form applied to the stored face
and its stored landmarks (a similarity of the raw frame, so the result equals aligning the raw
frame, except that pixels outside the stored crop come out as the border grey). Frames without
landmarks are dropped, as JAA-Net drops them, and counted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..faces.align import IDX_68_TO_49, LEFT_EYE, RIGHT_EYE, alignment_params, similarity_49, transform_points, warp
from ..errors import ConfigError
from ..protocols import Protocol
from ..store import Store
from ._common import (ExportReport, FaceWriter, au_weights, ds_name, fold_rows, format_ints, image_name,
                      sidecar_doc, store_geometry, write_lines, write_sidecar)

SIZE, BOX_ENLARGE = 200, 2.9

# Mirror partner of each point of the 68-point iBUG scheme (0-based), by facial region.
_MIRROR_68 = {**{i: 16 - i for i in range(17)},                                   # jaw
              **dict(zip(range(17, 27), range(26, 16, -1))),                      # brows
              27: 27, 28: 28, 29: 29, 30: 30,                                     # nose bridge
              31: 35, 32: 34, 33: 33, 34: 32, 35: 31,                             # lower nose
              36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46,                     # eyes
              45: 36, 44: 37, 43: 38, 42: 39, 47: 40, 46: 41,
              48: 54, 49: 53, 50: 52, 51: 51, 52: 50, 53: 49, 54: 48,             # outer lip
              55: 59, 56: 58, 57: 57, 58: 56, 59: 55,
              60: 64, 61: 63, 62: 62, 63: 61, 64: 60, 65: 67, 66: 66, 67: 65}     # inner lip


def reflect_49() -> list[int]:
    """For each 49-point landmark (1-based), the 1-based index of its mirror image."""
    to49 = {int(j): k for k, j in enumerate(IDX_68_TO_49)}
    return [to49[_MIRROR_68[int(j)]] + 1 for j in IDX_68_TO_49]


def biocular(points: np.ndarray) -> float:
    d = points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)
    return float(d @ d)


def _stems(protocol: Protocol, ds: str, k: int) -> tuple[str, str]:
    """JAA-Net's list names of fold k: `<DS>_combine_1_2` and `<DS>_part3` where the folds are
    made of numbered parts (BP4D, DISFA, BP4D+), `<DS>_fold<k>_{train,test}` otherwise."""
    f = protocol.fold(k)
    numbered = all(p.removeprefix("part").isdigit() for p in protocol.parts) and len(protocol.parts) > 1
    if numbered and len(f.test_parts) == 1 and not (f.train_split or f.test_split):
        train = [p.removeprefix("part") for p in protocol.parts if p not in f.test_parts]
        return f"{ds}_combine_{'_'.join(train)}", f"{ds}_{f.test_parts[0]}"
    return f"{ds}_fold{k}_train", f"{ds}_fold{k}_test"


def _write_list(out: Path, stem: str, rows: np.ndarray, names: dict, aligned: dict, store: Store) -> list[Path]:
    pts = [aligned[int(i)] for i in rows]
    y = np.where(store.labels[rows] == 1, 1, 0)
    lists = out / "list"
    return [write_lines(lists / f"{stem}_path.txt", [str(out / "imgs" / names[int(i)]) for i in rows]),
            write_lines(lists / f"{stem}_land.txt", ["\t".join(f"{v:f}" for v in p.reshape(-1)) for p in pts]),
            write_lines(lists / f"{stem}_biocular.txt", [f"{biocular(p):f}" for p in pts]),
            write_lines(lists / f"{stem}_AUoccur.txt", format_ints(y))]


def export(store: Store, protocol: Protocol, out: Path, *, folds: Sequence[int] | None = None,
           progress: bool | None = None) -> ExportReport:
    ds = ds_name(store)
    names: dict[int, str] = {}
    aligned: dict[int, np.ndarray] = {}    # row -> its 49 points in the 200 x 200 face
    matrices: dict[int, np.ndarray] = {}   # row -> stored face -> JAA-Net face
    dropped: dict[str, int] = {}
    land, face = store.landmarks, store.face
    for i in range(len(store)):
        p = np.asarray(land[i], np.float64)
        try:
            if not face[i] or not np.isfinite(p).all():
                raise ConfigError("no landmarks")
            matrices[i] = similarity_49(p, SIZE, BOX_ENLARGE)
        except ConfigError:   # no face, or degenerate points (both eye centres on one pixel)
            dropped[str(store.subjects[i])] = dropped.get(str(store.subjects[i]), 0) + 1
            continue
        aligned[i] = transform_points(p, matrices[i])
        names[i] = image_name(store.dataset, store.subjects[i], store.session_ids[i], store.frames[i], ".jpg")

    def realign(i: int, rgb: np.ndarray) -> np.ndarray:
        return warp(rgb, matrices[i], SIZE)

    faces = FaceWriter(store, out / "imgs", lambda i: names[i], progress, transform=realign)
    files, fold_docs = {}, []
    done: set[str] = set()
    for f in fold_rows(store, protocol, folds):
        train_stem, test_stem = _stems(protocol, ds, f.index)
        written = []
        for stem, rows, is_train in ((train_stem, f.train, True), (test_stem, f.test, False)):
            if stem in done:    # a part tested by one fold, written once
                continue
            done.add(stem)
            kept = np.array([i for i in rows if int(i) in names], np.int64)
            faces.write(kept, f"{stem} faces")
            written += _write_list(out, stem, kept, names, aligned, store)
            if is_train:
                w = au_weights(store.labels[kept], protocol.aus, f"{stem} of {store.path}")
                written.append(write_lines(out / "list" / f"{stem}_weight.txt", ["\t".join(f"{x:f}" for x in w)]))
            fold_docs.append({"fold": f.index, "split": "train" if is_train else "test", "stem": stem,
                              "subjects": sorted(set(store.subjects[kept].tolist())), "frames": int(len(kept)),
                              "dropped_no_landmarks": int(len(rows) - len(kept)),
                              "unknown_written_as_0": int((store.labels[kept] < 0).sum())})
        files[f"fold{f.index}"] = [str(p.relative_to(out)) for p in written]
    files["reflect"] = [str(write_lines(out / "list" / "reflect_49.txt",
                                        [" ".join(map(str, reflect_49()))]).relative_to(out))]
    geometry = {"size": SIZE, "alignment": alignment_params(SIZE, BOX_ENLARGE), "from": store_geometry(store),
                "text": f"{SIZE} x {SIZE} faces re-aligned from the stored face and its landmarks with JAA-Net's "
                        f"box_enlarge {BOX_ENLARGE}; pixels outside the stored crop are border grey"}
    doc = sidecar_doc(store, protocol, "jaanet", unknown="0 (JAA-Net's AUoccur is 0/1; counted per list)",
                      geometry=geometry, folds=fold_docs, files=files,
                      extra={"dropped_no_landmarks": {"total": int(sum(dropped.values())), "by_subject": dropped},
                             "paths": "absolute", "landmarks": "x1 y1 ... x49 y49, 0-based pixels of the face"})
    write_sidecar(out, doc)
    return ExportReport("jaanet", out, doc)
