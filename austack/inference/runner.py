"""The prediction loop: frames -> faces (a producer thread) -> batches -> the detector.

Decoding and landmarks run in a background thread that fills a bounded queue, so the model
works while the next frames are decoded and memory stays flat in video length. Faces are
batched for the model; on CUDA a batch's results are read back only after the next batch is
launched, so the GPU is not left waiting for Python. Rows come out in frame order.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ..transfer import host_to_device
from .faces import FaceFinder, FoundFace
from .frames import Frame

_END = object()


@dataclass
class Row:
    """One CSV row: a face of a frame, or the frame with face=0 and no probabilities."""

    source: str
    frame: int
    time_s: float | None
    face: int
    box: tuple[float, float, float, float] | None
    probs: np.ndarray | None            # float32 [n_au]
    occurrence: np.ndarray | None       # uint8 [n_au], at the detector's thresholds


@dataclass
class Tally:
    frames: int = 0
    frames_with_face: int = 0
    faces: int = 0
    undecodable: int = 0
    seconds: float = 0.0
    smallest_findable: float = 0.0   # --all-faces on shrunk images: faces under this (px) were missed
    started: float = field(default_factory=time.perf_counter)


def _put(out: queue.Queue, item, stop: threading.Event) -> bool:
    """Put, unless the consumer has gone (then False)."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _produce(frames: Iterable[Frame], finder: FaceFinder, out: queue.Queue, stop: threading.Event):
    try:
        for f in frames:
            faces = [] if isinstance(f.pixels, Exception) else finder(f.pixels, f.sequence, f.still)
            if not isinstance(f.pixels, Exception):
                f.pixels = None   # the aligned faces are all that is needed from here on
            if not _put(out, (f, faces), stop):
                return
        _put(out, _END, stop)
    except BaseException as e:   # handed to the consumer, which re-raises it in its thread
        _put(out, e, stop)


def _items(frames: Iterable[Frame], finder: FaceFinder, depth: int) -> Iterator[tuple[Frame, list]]:
    """(frame, faces) in order, computed ahead in a thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(frames, finder, q, stop), daemon=True,
                              name="austack-predict-frames")
    worker.start()
    try:
        while (item := q.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _launch(detector, faces: list[FoundFace], device: torch.device):
    if not faces:
        return None
    batch = torch.from_numpy(np.stack([f.image for f in faces])).permute(0, 3, 1, 2).contiguous()
    probs = detector.predict(host_to_device(batch, device))
    return probs, detector.decide(probs)


def _rows(items, launched) -> list[Row]:
    probs, occ = (None, None) if launched is None else (t.cpu().numpy() for t in launched)
    rows, k = [], 0
    for f, faces in items:
        if not faces:
            rows.append(Row(f.source, f.index, f.time_s, 0, None, None, None))
        for face in faces:
            rows.append(Row(f.source, f.index, f.time_s, face.number, face.box, probs[k], occ[k]))
            k += 1
    return rows


def predict_rows(detector, frames: Iterable[Frame], finder: FaceFinder, *, batch_size: int = 32,
                 device: torch.device | None = None, tally: Tally | None = None,
                 on_frame: Callable[[Tally], None] | None = None) -> Iterator[list[Row]]:
    """Lists of rows, in frame order, as each batch of faces is scored."""
    device = device or next(detector.parameters()).device
    tally = tally if tally is not None else Tally()
    pending, items, faces = None, [], []
    for f, found in _items(frames, finder, depth=2 * batch_size):
        items.append((f, found))
        faces.extend(found)
        _count(tally, f, found)
        if on_frame is not None:
            on_frame(tally)
        if len(faces) >= batch_size:
            launched = (items, _launch(detector, faces, device))
            if pending is not None:
                yield _rows(*pending)
            pending, items, faces = launched, [], []
    if pending is not None:
        yield _rows(*pending)
    if items:
        yield _rows(items, _launch(detector, faces, device))
    tally.seconds = time.perf_counter() - tally.started


def _count(tally: Tally, f: Frame, found: list) -> None:
    tally.frames += 1
    tally.undecodable += isinstance(f.pixels, Exception)
    tally.frames_with_face += bool(found)
    tally.faces += len(found)
