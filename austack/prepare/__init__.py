"""`austack.prepare`: one raw distribution -> one aligned HDF5 store.

The package reads bottom to top: `options` (the settings) and `job` (a chunk's job and
result), the chunk paths `cpu` and `gpu` behind one dispatcher `chunk`, then `plan` (pass 1),
`steps` (chunks in write order, the ordered writer), `shards`, `executors` (with
`dask_cluster`), and `run`, whose `prepare` is the entry point.
"""
from .chunk import process_chunk
from .job import Job
from .options import CHUNK_FRAMES, LANDMARK_MODES, SHARD_SESSIONS, PrepareOptions, cli_fields
from .plan import make_plan
from .run import prepare
from .steps import PrepareReport, file_sha256

__all__ = ["prepare", "PrepareOptions", "cli_fields", "make_plan", "PrepareReport", "file_sha256",
           "SHARD_SESSIONS", "LANDMARK_MODES", "CHUNK_FRAMES", "process_chunk", "Job"]
