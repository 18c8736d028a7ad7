"""The settings of one prepare run: `PrepareOptions`, declared once.

Each field carries its help text and range (`austack.settings.setting`); `austack prepare`
generates its options from the fields marked for the CLI, and a library call gets the same
checks in `__post_init__`. The rest (cli=False) are for library callers and tests.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError
from ..settings import check_value, setting
from ..store import ENCODINGS

LANDMARK_MODES = ("auto", "shipped", "dlib")
CHUNK_FRAMES = 256
SHARD_SESSIONS = 4          # sessions per shard by default


@dataclass(frozen=True)
class PrepareOptions:
    workers: int = setting(1, "Worker processes (sessions are decoded and aligned in parallel).", min=1)
    landmarks: str = setting("auto", "auto: shipped landmarks where present, dlib elsewhere.",
                             choices=LANDMARK_MODES)
    size: int = setting(256, "Aligned image side.", min=16)
    box_enlarge: float = setting(2.9, "Face box enlargement of the 49-point alignment.", min=0, min_open=True)
    encoding: str = setting("jpeg", "Image encoding in the store (see docs/benchmarks.md).", choices=ENCODINGS,
                            flag="store")
    resume: bool = setting(False, "Continue an interrupted run (OUT.h5.partial).")
    force: bool = setting(False, "Rebuild OUT.h5 (or restart its partial file) from scratch.")
    dask: str | None = setting(None, "Run on a Dask cluster: local[:N] (N worker processes here) or a "
                                     "scheduler, e.g. tcp://host:8786 (docs/scale-out.md).", metavar="ADDRESS")
    device: str | None = setting(None, "Decode JPEG frames that have shipped landmarks on this torch device "
                                       "(cuda, cuda:1: nvJPEG) and warp them in batches; other frames take "
                                       "the CPU path. Recorded in the store (docs/benchmarks.md).",
                                 metavar="DEVICE")
    shards: bool = setting(False, "Each task writes a shard store of a few sessions into OUT.h5.shards/; "
                                  "OUT.h5 is copied from them (docs/scale-out.md).")
    virtual: bool = setting(False, "With --shards: keep the shards and make OUT.h5 virtual datasets over "
                                   "them.")
    shard_sessions: int = setting(SHARD_SESSIONS, "Sessions per shard, with --shards.", min=1)
    reader_options: dict[str, Any] | None = setting(None, "Options of the dataset's reader.", cli=False)
    detect_max_side: int = setting(640, "Longest side a frame is shrunk to for dlib's face detector.",
                                   min=1, cli=False)
    chunk_frames: int = setting(CHUNK_FRAMES, "Frames per chunk (one job).", min=1, cli=False)
    window: int | None = setting(None, "Chunks in flight (default: 2 x workers, or the cluster's threads).",
                                 min=1, cli=False)
    running: int | None = setting(None, "Of those, chunks unfinished (default: all; a cluster: its threads).",
                                  min=1, cli=False)

    def __post_init__(self):
        if self.landmarks not in LANDMARK_MODES:
            raise ConfigError(f"unknown landmark source {self.landmarks!r}; expected one of "
                              f"{', '.join(LANDMARK_MODES)}")
        if self.workers < 1 or self.chunk_frames < 1 or self.shard_sessions < 1:
            raise ConfigError(f"workers, chunk_frames and shard_sessions must be at least 1, got {self.workers}, "
                              f"{self.chunk_frames} and {self.shard_sessions}")
        if self.virtual and not self.shards:
            raise ConfigError("--virtual writes a store over shards: give --shards too")
        for f in fields(self):
            check_value(f, getattr(self, f.name))


def cli_fields() -> list:
    """The PrepareOptions fields `austack prepare` offers as options, in declaration order."""
    return [f for f in fields(PrepareOptions) if f.metadata["cli"]]
