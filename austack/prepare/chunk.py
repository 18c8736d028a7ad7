"""The one chunk dispatcher: a job with a device tries the GPU path (`gpu`), and every chunk
that path declines (or every chunk, without a device) takes the CPU path (`cpu`)."""
from __future__ import annotations

from .cpu import process_chunk_cpu
from .gpu import process_chunk_gpu
from .job import ChunkResult, Job


def process_chunk(job: Job) -> ChunkResult:
    """Decode, landmark, align and encode one chunk (runs in a worker process)."""
    if job.device is not None:
        result = process_chunk_gpu(job)
        if result is not None:
            return result
    return process_chunk_cpu(job)
