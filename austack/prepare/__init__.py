"""`austack.prepare`: one raw distribution -> one aligned HDF5 store (see `run`)."""
from .run import CHUNK_FRAMES, LANDMARK_MODES, make_plan, prepare
from .cpu import Job, process_chunk
from .shards import SHARD_SESSIONS
from .steps import PrepareReport, file_sha256

__all__ = ["prepare", "make_plan", "PrepareReport", "file_sha256", "SHARD_SESSIONS", "LANDMARK_MODES",
           "CHUNK_FRAMES", "process_chunk", "Job"]
