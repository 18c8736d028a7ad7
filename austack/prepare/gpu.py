"""prepare's short path on a GPU (`prepare --device cuda`): a chunk's JPEGs decoded together
by nvJPEG and every face warped in one batched call.

For a chunk whose frames all have usable shipped landmarks and live in JPEG files (BP4D's and
GFT's layout): the files are read on the host, `torchvision.io.decode_jpeg` decodes them on
the device (nvJPEG on CUDA; libjpeg on the CPU, which the tests use), `warp_batch` samples
the aligned faces in one `grid_sample` call per frame size, and the faces come back to the
host to be stored as on the CPU path. Any other chunk (dlib landmarks, videos, zips, PNGs, a
file that does not read or decode) runs the CPU path, which reports what failed by name.

The bytes are not the CPU path's: another decoder (whole frames; nvJPEG's IDCT and chroma
upsampling) and another bilinear. They stay within 2 grey levels (mean absolute difference)
of it (`tests/test_prepare_gpu.py`), and the store records its `pixel_decoder`, so stores
made either way are told apart. Which chunks take which path depends on the inputs alone,
so a resumed run writes the same bytes.
"""
from __future__ import annotations

import os
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np

from ..faces.align import BORDER, at_scale, transform_points
from ..devices import resolve_device
from ..errors import ConfigError
from ..store import ORIGIN, encode_image
from .job import ChunkResult, Job, chunk_rows, frame_plans

if TYPE_CHECKING:
    import torch

BATCH = 32          # frames decoded and warped at once: ~1.4 GB of float32 at BP4D's size
JPEG_SUFFIXES = (".jpg", ".jpeg")


def check_device(device: str) -> None:
    """A clear error for a device this machine cannot use, before any work."""
    try:
        _decoder()
    except ImportError as e:
        raise ConfigError(f"--device {device} needs torch and torchvision's decode_jpeg ({e})") from None
    resolve_device(device, kinds=None, auto=False, select=False)


def _decoder():
    """torchvision.io.decode_jpeg (raises ImportError where it is gone)."""
    from torchvision.io import decode_jpeg

    return decode_jpeg


def _decode(files: list, device: str) -> list:
    """RGB (3, H, W) uint8 frames on `device`. torchvision 0.29 marks its image codecs
    deprecated in favour of TorchCodec's; they work, and the warning on every call says
    nothing a prepare run can act on."""
    from torchvision.io import ImageReadMode

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchvision\.io")
        return _decoder()(files, mode=ImageReadMode.RGB, device=device)


def warp_batch(images: "torch.Tensor", matrices: np.ndarray, size: int) -> "torch.Tensor":
    """Each (3, H, W) image of `images` (N, 3, H, W; uint8 or float) warped by its 2 x 3
    matrix onto size x size, bilinear, with the constant grey border: what `align.warp` does
    with OpenCV, as (N, 3, size, size) uint8 on the images' device."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = images.shape
    dev = images.device
    inverse = torch.as_tensor(np.stack([_invert(m) for m in matrices]), dtype=torch.float64, device=dev)
    ys, xs = torch.meshgrid(torch.arange(size, device=dev, dtype=torch.float64),
                            torch.arange(size, device=dev, dtype=torch.float64), indexing="ij")
    dst = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)
    src = (dst @ inverse.transpose(1, 2)).reshape(n, size, size, 2)      # frame pixel of each output
    # grid_sample's align_corners=False coordinates: pixel centres at (2i + 1) / W - 1
    grid = torch.stack([(2 * src[..., 0] + 1) / w - 1, (2 * src[..., 1] + 1) / h - 1], -1)
    sampled = F.grid_sample(images.float(), grid.float(), mode="bilinear", padding_mode="zeros",
                            align_corners=False)
    inside = _inside_weight(src[..., 0], w) * _inside_weight(src[..., 1], h)   # the frame's share
    out = sampled + BORDER * (1 - inside.float()).unsqueeze(1)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _invert(m: np.ndarray) -> np.ndarray:
    a = np.vstack([np.asarray(m, np.float64), [0, 0, 1]])
    return np.linalg.inv(a)[:2]


def _inside_weight(coord: "torch.Tensor", n: int) -> "torch.Tensor":
    """The bilinear weight that falls on pixels 0..n-1 along one axis (the rest is border)."""
    lo = coord.floor()
    frac = coord - lo
    return (1 - frac) * ((lo >= 0) & (lo <= n - 1)) + frac * ((lo + 1 >= 0) & (lo + 1 <= n - 1))


def _plans(job: Job) -> tuple[list, list[int]] | None:
    """Each frame's (49 points, matrix) and the scale the CPU path decodes it at, or None
    when the chunk is not for this path."""
    if job.landmarks == "dlib":
        return None
    if not all(f.source.kind == "image" and f.source.path.lower().endswith(JPEG_SUFFIXES) for f in job.frames):
        return None
    plans, scales, _ = frame_plans(job)
    return (plans, scales) if all(isinstance(p, tuple) for p in plans) else None


def _read(path: str) -> bytearray:
    """A file's bytes, writable (a tensor shares them without a copy) and searchable."""
    with open(path, "rb") as f:
        data = bytearray(os.fstat(f.fileno()).st_size)
        n = f.readinto(data)
    return data if n == len(data) else data[:n]


def _read_all(job: Job) -> list | None:
    """Each frame's file bytes as a tensor; None when one does not read, is cut short (the
    CPU path reports it; a decoder would fill it with grey), or is turned by its EXIF
    orientation (OpenCV turns such a frame, nvJPEG would not)."""
    import torch

    from ..faces.decode import exif_turned, jpeg_complete

    try:
        files = [_read(f.source.path) for f in job.frames]
    except OSError:
        return None
    if not all(jpeg_complete(b, len(b)) and not exif_turned(b) for b in files):
        return None
    return [torch.frombuffer(b, dtype=torch.uint8) for b in files]


def _aligned(job: Job, files: list, matrices: np.ndarray, scales: list[int]) -> np.ndarray | None:
    """(n, size, size, 3) RGB uint8 faces on the host, or None if a file does not decode.

    Each frame is first averaged over r x r blocks, r its entry in `scales` (the scale the
    CPU path decodes it at; libjpeg's DCT scaling is close to such an average): a bilinear
    warp straight from full resolution would alias a face shrunk 3-6 times."""
    import torch
    import torch.nn.functional as F

    out = np.empty((len(files), job.size, job.size, 3), np.uint8)
    for start in range(0, len(files), BATCH):
        part = range(start, min(start + BATCH, len(files)))
        try:
            frames = _decode([files[i] for i in part], job.device)
        except torch.cuda.OutOfMemoryError:
            raise   # not the files' doing: falling back would make the bytes depend on memory
        except RuntimeError:   # a file nvJPEG cannot decode: the CPU path names it
            return None
        groups: dict[tuple, list[int]] = {}
        for i, fr in zip(part, frames):
            groups.setdefault((tuple(fr.shape), scales[i]), []).append(i)
        for (_, r), idx in groups.items():
            batch = torch.stack([frames[i - start] for i in idx]).float()
            if r > 1:
                batch = F.avg_pool2d(batch, r, ceil_mode=True)
            faces = warp_batch(batch, np.stack([at_scale(matrices[i], r) for i in idx]), job.size)
            out[idx] = faces.permute(0, 2, 3, 1).cpu().numpy()
    return out


def process_chunk_gpu(job: Job) -> ChunkResult | None:
    """The chunk on `job.device`, or None when it must take the CPU path."""
    t0 = time.perf_counter()
    planned = _plans(job)
    files = _read_all(job) if planned is not None else None
    if files is None:
        return None
    plans, scales = planned
    matrices = np.stack([m for _, m in plans]).astype(np.float64)
    faces = _aligned(job, files, matrices, scales)
    if faces is None:
        return None
    n = len(job.frames)
    points = np.stack([transform_points(p, m) for p, m in plans]).astype(np.float32)
    images = [encode_image(face, job.encoding, job.quality) for face in faces]
    face, origin = np.ones(n, np.uint8), np.full(n, ORIGIN["shipped"], np.uint8)
    return ChunkResult(chunk_rows(job, images, points, matrices.astype(np.float32), face, origin, []), [],
                       time.perf_counter() - t0)
