"""One pass over a loader: train an epoch, or predict a split.

Device-agnostic: batches arrive as uint8 on the host, are copied to the model's device
(non-blocking from pinned memory) and augmented there. On CUDA the forward runs under bf16
autocast with channels_last inputs; on the CPU it is plain fp32 with torch's thread setting.
Inside the loop nothing waits for the device: the loss is summed on the device and read once
per log interval.

A loss says what it needs (`austack.losses.base`): `views` augmented views per image go through
the encoder as one batch of views*B, are split back into one `EncoderOutput` per view, and
`loss.batch_loss(outs, labels)` turns them into the batch's loss; a `global_batch` loss gets
every rank's batch under DDP.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from ..errors import AustackError
from . import ddp


@dataclass
class StepInfo:
    """What the progress display gets every `log_every` steps (and after the last)."""

    step: int
    steps: int
    loss: float            # mean loss since the previous report
    images_per_s: float    # training images (not views) per second, this rank


@dataclass
class EpochStats:
    loss: float
    images: int            # images seen by this rank
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA; fp32 (no autocast) elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def to_device(images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    non_blocking = device.type == "cuda"
    images = images.to(device, non_blocking=non_blocking)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels.to(device, non_blocking=non_blocking)


def _stack_views(views: torch.Tensor | tuple | list) -> torch.Tensor:
    """The augmenter's output as one [views*B, 3, H, W] tensor, views stacked along dim 0."""
    if isinstance(views, (tuple, list)):
        return torch.cat(list(views), dim=0)
    return views


def loss_on_batch(model: torch.nn.Module, loss_fn: torch.nn.Module, augment: torch.nn.Module,
                  images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Augment `images` on their device, run the encoder, and apply the loss."""
    from ..models import EncoderOutput

    b = images.shape[0]
    x = _stack_views(augment(images))
    if x.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast_for(x.device):
        out = model(x)
    outs = [EncoderOutput(*(t[v * b:(v + 1) * b] for t in out)) for v in range(loss_fn.views)]
    if loss_fn.global_batch and ddp.current().enabled:   # see `gradient_scale`
        outs = [EncoderOutput(*(ddp.gather_with_grad(t) for t in o)) for o in outs]
        labels = ddp.gather_with_grad(labels)
    return loss_fn.batch_loss(outs, labels)


def gradient_scale(loss_fn: torch.nn.Module) -> int:
    """Factor on a loss before backward so that DDP's gradient averaging yields the true gradient.

    A loss over the gathered global batch is the same number on every rank, and each rank
    back-propagates into its own slice only: the sum of the ranks' gradients is the gradient, so
    the average DDP takes must be multiplied back by the world size. A per-rank loss (WCE) is a
    mean over equal batches, whose average over ranks is already the global mean.
    """
    return ddp.current().world_size if loss_fn.global_batch else 1


def train_one_epoch(model: torch.nn.Module, loader: Iterable, loss_fn: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, augment: torch.nn.Module, device: torch.device, *,
                    scaler: torch.amp.GradScaler | None = None, grad_clip: float | None = None,
                    log_every: int = 20, on_log: Callable[[StepInfo], None] | None = None) -> EpochStats:
    """Train `model` for one pass over `loader` of (uint8 images, int8 labels, rows) batches.

    `grad_clip`: rescale the gradients so that their global L2 norm is at most this (computed
    on the device; it adds no host sync).

    Raises AustackError if the loss becomes NaN/inf (checked at each log interval).
    """
    model.train()
    augment.train()
    steps = len(loader)  # type: ignore[arg-type]
    scale = gradient_scale(loss_fn)
    running = torch.zeros((), device=device)
    since, n_since, images_seen = 0, 0, 0
    total = torch.zeros((), device=device)
    t0 = t_log = time.perf_counter()
    for step, (images, labels, _rows) in enumerate(loader, start=1):
        images, labels = to_device(images, labels, device)
        loss = loss_on_batch(model, loss_fn, augment, images, labels)
        optimizer.zero_grad(set_to_none=True)
        scaled = scaler is not None and scaler.is_enabled()
        (scaler.scale(loss * scale) if scaled else loss * scale).backward()
        if grad_clip is not None:
            if scaled:
                scaler.unscale_(optimizer)   # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaled:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        running += loss.detach()
        total += loss.detach()
        since += 1
        n_since += images.shape[0]
        images_seen += images.shape[0]
        if step % log_every == 0 or step == steps:
            mean = running.item() / since  # the one host sync per interval
            if not math.isfinite(mean):
                raise AustackError(f"training loss became {mean} at step {step}/{steps}; lower --lr "
                                   f"or check the store's labels")
            now = time.perf_counter()
            if on_log is not None:
                on_log(StepInfo(step, steps, mean, n_since / max(now - t_log, 1e-9)))
            running.zero_()
            since, n_since, t_log = 0, 0, now
    seconds = time.perf_counter() - t0
    return EpochStats(total.item() / max(steps, 1), images_seen, seconds)


@torch.no_grad()
def predict(model: torch.nn.Module, loader: Iterable, augment: torch.nn.Module, device: torch.device, *,
            select: Callable | None = None, augment_train: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run `model` over `loader` in eval mode: (outputs, labels, rows) as numpy arrays.

    `select` picks the tensor to return from the model's output (e.g. `lambda o: o.probs` for
    an encoder); None: the output itself (a Detector's probabilities).
    `augment_train` draws random training views instead of the deterministic eval view. Under
    several ranks each rank reads a shard, and every rank gets all rows back, in row order,
    without duplicates.
    """
    model.eval()
    augment.train(augment_train)
    outs, labs, rows = [], [], []
    for images, labels, row in loader:
        images, labels = to_device(images, labels, device)
        x = _stack_views(augment(images))
        with autocast_for(device):
            out = model(x) if select is None else select(model(x))
        outs.append(out.float())
        labs.append(labels)
        rows.append(torch.as_tensor(row, device=device).long())
    out, lab, row = torch.cat(outs), torch.cat(labs), torch.cat(rows)
    if ddp.current().enabled:
        out, lab, row = (ddp.gather_variable(t) for t in (out, lab, row))
        # DistributedSampler pads the last shard by repeating rows: keep each row once.
        row, keep = np.unique(row.cpu().numpy(), return_index=True)
        return out.cpu().numpy()[keep], lab.cpu().numpy()[keep], row
    return out.cpu().numpy(), lab.cpu().numpy(), row.cpu().numpy()
