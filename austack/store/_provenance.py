"""Where a store's bytes come from: library versions, and whether the source was synthetic."""
from __future__ import annotations

import json
import math
import os
from importlib import metadata
from pathlib import Path

import cv2
import h5py
import numpy as np

from .. import __version__
from ..errors import RawDataError

SYNTH_MANIFEST = Path("_synth") / "manifest.json"   # written by `austack synth` (austack.synth)


def _dist_version(*names: str) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def library_versions() -> dict:
    """Versions of the libraries the stored bytes depend on (decode, landmarks, encode, file)."""
    return {"opencv": cv2.__version__, "dlib": _dist_version("dlib-bin", "dlib"), "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version, "numpy": np.__version__}


def synth_provenance(raw_dir: str | os.PathLike) -> dict | None:
    """{"seed", "noise"} from `RAW/_synth/manifest.json` when `austack synth` made RAW, else None."""
    path = Path(raw_dir) / SYNTH_MANIFEST
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text())
        seed, noise, complete = int(m["seed"]), float(m["noise"]["rate"]), bool(m["complete"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RawDataError(f"{path} is not a readable synth manifest ({e}); rerun `austack synth` for this "
                           "folder, or delete the file if the data is not synthetic", path=path) from None
    if not complete or not math.isfinite(noise):
        raise RawDataError(f"{path} is from an unfinished `austack synth` run; rerun it to completion",
                           path=path)
    return {"seed": seed, "noise": noise}


def root_attrs(source: dict, synthetic: dict | None) -> dict:
    """Root attributes about provenance (the settings' own are `StoreSettings.attrs`)."""
    out = {"source": json.dumps(source, sort_keys=True, default=str), "austack_version": __version__,
           "versions": json.dumps(library_versions(), sort_keys=True), "source_synthetic": synthetic is not None}
    if synthetic is not None:
        out["source_noise"] = float(synthetic["noise"])
        out["source_synth_seed"] = int(synthetic["seed"])
    return out
