"""Schema 2 of the prepared store, as code: names, dtypes and the settings a store is tied to.

docs/store-schema.md is the prose version of this file; keep the two in step.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import h5py
import numpy as np

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # schema 1 lacks the digests and identity; everything else reads alike
ENCODINGS = ("jpeg", "raw")
JPEG_QUALITY = 95
PARTIAL_SUFFIX = ".partial"

# Rows per HDF5 chunk. JPEG rows are small (about 15 kB at 256 px), so a chunk of the vlen
# heap references covers many frames; raw rows are 196 kB, one frame per chunk keeps random
# reads to one frame. Measured in docs/benchmarks.md ("Store encoding").
JPEG_CHUNK_ROWS = 256
META_CHUNK_ROWS = 4096

STR = h5py.string_dtype("utf-8")
# One row per whole session: its row range, the sha256 of its image rows, the label file it
# came from with that file's sha256, and how many rows of `anomalies` exist once it is written.
SESSION_DTYPE = np.dtype([("subject", STR), ("session", STR), ("start", np.int64), ("stop", np.int64),
                          ("sha256", "S64"), ("label_file", STR), ("label_sha256", "S64"),
                          ("anomaly_stop", np.int64)])
ANOMALY_DTYPE = np.dtype([("kind", STR), ("path", STR), ("detail", STR), ("count", np.int64)])

# Per-frame columns other than `images`: name -> (dtype, per-row shape given (n_au,)).
def frame_columns(n_au: int, with_intensities: bool) -> dict[str, tuple[object, tuple[int, ...]]]:
    cols = {
        "labels": (np.int8, (n_au,)),
        "landmarks": (np.float32, (49, 2)),
        "matrix": (np.float32, (2, 3)),
        "face": (np.uint8, ()),
        "landmark_origin": (np.uint8, ()),
        "subject": (STR, ()),
        "session": (STR, ()),
        "frame": (np.int32, ()),
        "split": (STR, ()),
    }
    if with_intensities:
        cols["intensities"] = (np.int8, (n_au,))
    return cols


ORIGIN = {"none": 0, "shipped": 1, "dlib": 2}


@dataclass(frozen=True)
class StoreSettings:
    """Everything that makes two stores of one dataset differ; resuming requires equality."""

    dataset: str
    aus: tuple[int, ...]
    protocol: str
    protocol_hash: str
    alignment: dict
    landmark_source: str = "auto"
    image_encoding: str = "jpeg"
    jpeg_quality: int = JPEG_QUALITY
    with_intensities: bool = False
    pixel_decoder: str = "opencv"   # what decoded and warped the frames (`prepare --device`)
    size: int = field(init=False)

    def __post_init__(self):
        if self.image_encoding not in ENCODINGS:
            from ..errors import ConfigError
            raise ConfigError(f"unknown image encoding {self.image_encoding!r}; expected one of {', '.join(ENCODINGS)}")
        object.__setattr__(self, "aus", tuple(int(a) for a in self.aus))
        object.__setattr__(self, "size", int(self.alignment["size"]))

    def attrs(self) -> dict:
        """The root attributes these settings are stored as."""
        out = {"dataset": self.dataset, "aus": np.asarray(self.aus, dtype=np.int64),
               "protocol": self.protocol, "protocol_hash": self.protocol_hash,
               "alignment": json.dumps(self.alignment, sort_keys=True),
               "landmark_source": self.landmark_source, "image_encoding": self.image_encoding,
               "with_intensities": bool(self.with_intensities)}
        if self.image_encoding == "jpeg":
            out["jpeg_quality"] = int(self.jpeg_quality)
        if self.pixel_decoder != "opencv":   # absent: OpenCV, as in every store made before
            out["pixel_decoder"] = self.pixel_decoder
        return out

    @classmethod
    def from_attrs(cls, attrs) -> "StoreSettings":
        return cls(dataset=str(attrs["dataset"]), aus=tuple(int(a) for a in attrs["aus"]),
                   protocol=str(attrs["protocol"]), protocol_hash=str(attrs["protocol_hash"]),
                   alignment=json.loads(attrs["alignment"]),
                   landmark_source=str(attrs["landmark_source"]),
                   image_encoding=str(attrs["image_encoding"]),
                   jpeg_quality=int(attrs.get("jpeg_quality", JPEG_QUALITY)),
                   with_intensities=bool(attrs.get("with_intensities", False)),
                   pixel_decoder=str(attrs.get("pixel_decoder", "opencv")))

    def differences(self, new: "StoreSettings") -> list[str]:
        """'name: existing X vs new Y' for every setting that differs."""
        old_d, new_d = asdict(self), asdict(new)
        if self.image_encoding != "jpeg" and new.image_encoding != "jpeg":
            old_d.pop("jpeg_quality"), new_d.pop("jpeg_quality")
        return [f"{k}: existing {old_d[k]!r} vs new {new_d[k]!r}" for k in old_d if old_d[k] != new_d[k]]


REQUIRED_ATTRS = ("schema_version", "complete", "dataset", "aus", "protocol", "protocol_hash", "alignment",
                  "landmark_source", "image_encoding", "austack_version", "source", "identity", "versions",
                  "source_synthetic")
JSON_ATTRS = ("alignment", "source", "versions")
DIGESTS = "column_sha256"   # (n_sessions, n_columns) S64; its attribute `columns` names the columns


def text(value) -> str:
    """A string field read back from HDF5 (h5py gives bytes inside compound rows)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
