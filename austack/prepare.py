"""`prepare`: one raw distribution -> one aligned HDF5 store, resumable.

A plan (pass 1: every session's labels, no pixels) fixes the sessions and the totals. The job
stream then reads the sessions again in the reader's order and cuts each into chunks of at
most `chunk_frames` frames; `ordered_map` runs the chunks on an executor (in-process, a local
process pool, or any `concurrent.futures.Executor`, e.g. a cluster's) with a bounded window,
and the ordered writer saves each result durably as it comes (`StoreWriter`), so memory stays
flat whatever the dataset size and a run killed at any instant resumes from what it saved.

Chunks are cut the same way whatever the executor, the landmark tracker restarts at each
chunk, and a chunk is kept on resume only if its inputs (`job_key`) are unchanged; so every
run of the same inputs writes the same bytes, resumed or not.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .align import alignment_params
from .datasets.base import AnomalyReport, SessionRef, create_reader
from .errors import AustackError, ConfigError, StoreMismatchError
from .executors import WorkerLostError, local_executor, ordered_map
from .prepare_chunk import Job, one_cv2_thread, process_chunk
from .prepare_gpu import check_device, pixel_decoder
from .prepare_shards import SHARD_SESSIONS, ShardOptions, run_sharded
from .prepare_steps import PrepareReport, Progress, Step, StepWriter, file_sha256, job_maker, session_steps
from .protocols import load_protocol
from .store import ORIGIN, StoreSettings, StoreWriter
from .store._provenance import synth_provenance

LANDMARK_MODES = ("auto", "shipped", "dlib")
CHUNK_FRAMES = 256


@dataclass
class Plan:
    """What pass 1 learnt: the sessions in write order, their sizes, and the store settings."""

    reader: object
    refs: list[SessionRef]
    counts: list[int]
    settings: StoreSettings
    reader_report: AnomalyReport
    source: dict
    synthetic: dict | None


def make_plan(dataset: str, raw_dir, *, landmarks: str, size: int, box_enlarge: float, store: str,
              reader_options: dict | None, detect_max_side: int, chunk_frames: int,
              device: str | None = None) -> Plan:
    """Pass 1: labels only, for the totals, the reader's anomalies and the store settings."""
    reader = create_reader(dataset, raw_dir, **(reader_options or {}))
    protocol = load_protocol(reader.protocol)
    refs = reader.sessions()
    report, counts, with_intensities = AnomalyReport(), [], False
    for ref in refs:
        rec = reader.read_session(ref, report)
        counts.append(len(rec.frames))
        with_intensities |= any(f.intensities is not None for f in rec.frames)
    settings = StoreSettings(dataset=reader.dataset, aus=protocol.aus, protocol=protocol.id,
                             protocol_hash=protocol.hash, alignment=alignment_params(size, box_enlarge),
                             landmark_source=landmarks, image_encoding=store, with_intensities=with_intensities,
                             pixel_decoder=pixel_decoder(device))
    source = {"root": str(reader.root), "reader_options": reader.options, "sessions": len(refs),
              "frames": sum(counts), "landmarks": landmarks, "detect_max_side": detect_max_side,
              "chunk_frames": chunk_frames, "protocol_file": protocol.path}
    return Plan(reader, refs, counts, settings, report, source, synth_provenance(reader.root))


def prepare(dataset: str, raw_dir: str | os.PathLike, out: str | os.PathLike, *, workers: int = 1,
            landmarks: str = "auto", size: int = 256, box_enlarge: float = 2.9, store: str = "jpeg",
            resume: bool = False, force: bool = False, reader_options: dict | None = None,
            progress: Progress | None = None, detect_max_side: int = 640, executor: Executor | None = None,
            chunk_frames: int = CHUNK_FRAMES, window: int | None = None, running: int | None = None,
            dask: str | None = None, device: str | None = None,
            shards: bool = False, virtual: bool = False, shard_sessions: int = SHARD_SESSIONS) -> PrepareReport:
    """Align every frame of the raw distribution at `raw_dir` into the store `out`.

    `landmarks`: "shipped" uses only the dataset's landmark files, "dlib" only detection,
    "auto" the shipped ones where a frame has them and dlib elsewhere. Frames without a face
    are kept (face=0) and reported; undecodable frames are reported with their file.
    `executor` runs the chunks (default: `workers` local processes, in-process for 1), or
    `dask` names a Dask cluster to run them on (`local[:N]` or a scheduler address); at most
    `window` (default 2 x workers) chunks are in flight, at most `running` (default all) of
    them unfinished: a cluster's executor runs with `running` = its workers (`ordered_map`). `shards`: each task writes a shard
    store of `shard_sessions` sessions into `OUT.h5.shards/` and `out` is copied from them, or
    with `virtual` made of virtual datasets over them (`prepare_shards`). `device` (a torch
    device, e.g. "cuda") decodes JPEG frames with shipped landmarks there and warps them in
    batches (`prepare_gpu`); the store records it as its `pixel_decoder`.
    """
    if dask is not None:
        if executor is not None:
            raise ConfigError("give prepare an executor or a Dask address, not both")
        from .dask_cluster import dask_executor

        with dask_executor(dask) as (cluster, threads):
            return prepare(dataset, raw_dir, out, workers=workers, landmarks=landmarks, size=size,
                           box_enlarge=box_enlarge, store=store, resume=resume, force=force,
                           reader_options=reader_options, progress=progress, detect_max_side=detect_max_side,
                           executor=cluster, chunk_frames=chunk_frames, window=window or 2 * threads,
                           running=running or _cluster_running(threads), device=device,
                           shards=shards, virtual=virtual, shard_sessions=shard_sessions)
    _check_options(landmarks, workers, chunk_frames, shards, virtual, shard_sessions)
    if device is not None:
        _check_device(device, workers, executor)
    t0 = time.perf_counter()
    plan = make_plan(dataset, raw_dir, landmarks=landmarks, size=size, box_enlarge=box_enlarge, store=store,
                     reader_options=reader_options, detect_max_side=detect_max_side, chunk_frames=chunk_frames,
                     device=device)
    report = PrepareReport(Path(out).expanduser().resolve(), plan.settings.dataset)
    s = plan.settings
    template = Job([], landmarks, size, box_enlarge, store, s.jpeg_quality, s.with_intensities, len(s.aus),
                   detect_max_side, device)
    window = window or 2 * workers
    if shards:
        with _executor(executor, workers) as ex:
            wrote = run_sharded(plan, report, ex, (window, running), progress, template, chunk_frames,
                                ShardOptions(virtual, shard_sessions, resume, force))
        if not wrote:
            return _already_complete(report.out, s, report, t0)
    else:
        final = report.out
        if resume and final.exists() and not force and not _partial_exists(final):
            return _already_complete(final, s, report, t0)
        with StoreWriter(final, s, resume=resume, force=force) as writer, _executor(executor, workers) as ex:
            _run(plan, writer, report, ex, (window, running), progress, job_maker(template), chunk_frames)
    report.sessions, report.frames = len(plan.refs), sum(plan.counts)
    report.origins = Counter({name: report.origins[code] for name, code in ORIGIN.items() if report.origins[code]})
    report.seconds = time.perf_counter() - t0
    return report


def _check_device(device: str, workers: int, executor: Executor | None) -> None:
    """`--device` runs the chunks in this process (a forked pool cannot share its CUDA
    context) or on a cluster's workers, each with its own device."""
    if workers > 1:
        raise ConfigError(f"--device {device} decodes in this process: drop --workers {workers} (one process "
                          "keeps a GPU busy), or use --dask with a GPU per worker")
    if executor is None:
        check_device(device)


def _cluster_running(threads: int) -> int:
    """Chunks to keep unfinished on a cluster: one per worker thread, so each goes to whichever
    worker is free (`ordered_map`); with a single worker there is no wrong place, and one more
    queued on it hides the round trip between a chunk's end and the next one's start (0.88
    of the local pool's rate without it, 0.96-1.00 with it, measured on 91 kB frames)."""
    return threads if threads > 1 else 2


def _check_options(landmarks: str, workers: int, chunk_frames: int, shards: bool, virtual: bool,
                   shard_sessions: int) -> None:
    if landmarks not in LANDMARK_MODES:
        raise ConfigError(f"unknown landmark source {landmarks!r}; expected one of {', '.join(LANDMARK_MODES)}")
    if workers < 1 or chunk_frames < 1 or shard_sessions < 1:
        raise ConfigError(f"workers, chunk_frames and shard_sessions must be at least 1, got {workers}, "
                          f"{chunk_frames} and {shard_sessions}")
    if virtual and not shards:
        raise ConfigError("--virtual writes a store over shards: give --shards too")


@contextmanager
def _executor(executor: Executor | None, workers: int) -> Iterator[Executor]:
    """The given executor, or `workers` local processes shut down on exit (at once, dropping
    queued work, on Ctrl-C or an error: nobody will write it). OpenCV runs on one thread
    meanwhile, here and so in the workers forked from here (`one_cv2_thread`)."""
    with one_cv2_thread():
        if executor is not None:
            yield executor
            return
        own, finished = local_executor(workers), False
        try:
            yield own
            finished = True
        finally:
            own.shutdown(wait=finished, cancel_futures=True)


def _run(plan: Plan, writer: StoreWriter, report: PrepareReport, executor: Executor, window: tuple[int, int | None],
         progress: Progress | None, job: Callable[[list], Job], chunk_frames: int) -> None:
    """The plain run: every chunk on the executor, saved in order by one writer."""
    sink = StepWriter(writer, plan.refs, sum(plan.counts), report, plan.settings.landmark_source, progress)
    for step, result in ordered_map(executor, process_chunk, _steps(plan, writer, job, chunk_frames), window[0],
                                    _naming_errors(plan, writer.path), running=window[1]):
        sink.step(step, result)
    report.anomalies.extend(plan.reader_report)
    writer.finish(source=plan.source, anomalies=list(plan.reader_report), sessions=len(plan.refs),
                  synthetic=plan.synthetic)


def _steps(plan: Plan, writer: StoreWriter, job: Callable[[list], Job], chunk_frames: int
           ) -> Iterator[tuple[Step, Job | None]]:
    """(step, job to run or None) for every chunk of every session, in write order."""
    throwaway = AnomalyReport()  # the reader's anomalies were collected in pass 1
    for i, ref in enumerate(plan.refs):
        yield from session_steps(i, ref, plan.reader.read_session(ref, throwaway).frames, writer, job, chunk_frames)


def _naming_errors(plan: Plan, final: Path) -> Callable[[Step, Exception], Exception]:
    """An executor's own failure (a dead worker, a broken pool) as one line naming the chunk."""
    def name(step: Step, e: Exception) -> Exception:
        if isinstance(e, AustackError):
            return e
        ref = plan.refs[step.session]
        why = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        return WorkerLostError(f"chunk {step.chunk} of session {ref.subject}/{ref.session} failed on the executor "
                               f"({why}); the chunks saved so far stay: rerun with --resume to complete {final}",
                               path=final)
    return name


def _partial_exists(final: Path) -> bool:
    return final.with_name(final.name + ".partial").exists()


def _already_complete(final: Path, settings: StoreSettings, report: PrepareReport, t0: float) -> PrepareReport:
    """`--resume` on a finished store: nothing to do if it was made with the same settings."""
    from .store import open_store, partial_path
    from .store._parts import sweep_leftovers

    sweep_leftovers(partial_path(final))   # what a run killed while removing its parts left
    with open_store(final) as s:
        diffs = s.settings.differences(settings)
        if diffs:
            raise StoreMismatchError(f"{final} is complete but was made with other settings ({'; '.join(diffs)}); "
                                     "rerun with --force to rebuild it", path=final)
        report.sessions, report.frames = len(s.sessions), len(s)
        report.resumed_sessions = report.sessions
        report.anomalies.items.extend(s.anomalies())
    report.already_complete = True
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["prepare", "make_plan", "PrepareReport", "file_sha256", "SHARD_SESSIONS", "LANDMARK_MODES", "CHUNK_FRAMES", "process_chunk", "Job"]
