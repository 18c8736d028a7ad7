"""Linear evaluation: score a frozen encoder by what a linear classifier per AU reads off it.

The encoder (trained with AUNCE alone) is frozen and kept in EVAL mode, so BatchNorm uses its
running statistics and nothing in it changes. Its per-AU embeddings are extracted once (once
per epoch when the training views are augmented), one linear classifier per AU is fitted on
them with WCE over the training split, and the epoch is chosen by mean F1 on the validation
split (drawn from training subjects). The fitted heads join the encoder in the fold's
`Detector`, which the engine then scores on the test split like any other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..models.detector import LinearHeads
from .train import predict

# Adam step size for the linear heads: a fresh linear layer on fixed features, fitted in a few
# epochs; the encoder's lr (1e-5 in the paper) would barely move it in that time.
LINEAR_LR = 1e-2
LINEAR_BATCH = 256


@dataclass
class LinearEvalResult:
    heads: LinearHeads                    # the heads of the epoch chosen on val
    best_epoch: int                       # 1-based linear-head epoch chosen on val
    val_f1_mean: float
    history: list[dict[str, Any]] = field(default_factory=list)   # per epoch: loss, val_f1_mean
    n_train: int = 0


def _embed(encoder, loader, augment, device, *, train_views: bool) -> tuple[torch.Tensor, torch.Tensor]:
    z, y, _ = predict(encoder, loader, augment, device, select=lambda out: out.embeddings, augment_train=train_views)
    return torch.from_numpy(z), torch.from_numpy(y)


def linear_eval(encoder: nn.Module, *, train_loader, val_loader, eval_augment: nn.Module,
                train_augment: nn.Module | None, loss_fn: nn.Module, device: torch.device, epochs: int,
                score: Callable[[np.ndarray, np.ndarray], float], seed: int = 0, lr: float = LINEAR_LR,
                batch_size: int = LINEAR_BATCH,
                on_epoch: Callable[[dict[str, Any]], None] | None = None) -> LinearEvalResult:
    """Fit per-AU linear heads on the frozen `encoder`; choose the epoch on val.

    `train_augment` None: training embeddings come from the eval view, extracted once.
    `score(probs, labels)` returns the mean F1 used for selection. `loss_fn` is a WCE module
    (`loss(probs, labels)`, unknown labels masked). The head is trained identically on every
    rank under DDP, since `predict` hands every rank all rows.
    """
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)

    val_z, val_y = _embed(encoder, val_loader, eval_augment, device, train_views=False)
    train_z = train_y = None
    if train_augment is None:
        train_z, train_y = _embed(encoder, train_loader, eval_augment, device, train_views=False)

    gen = torch.Generator().manual_seed(seed)
    n_au, dim = val_z.shape[1], val_z.shape[2]
    torch.manual_seed(seed)
    head = LinearHeads(n_au, dim).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=1e-6)
    best_state, best_f1, best_epoch = None, -1.0, 0
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        if train_augment is not None:
            train_z, train_y = _embed(encoder, train_loader, train_augment, device, train_views=True)
        head.train()
        order = torch.randperm(len(train_z), generator=gen)
        total = torch.zeros((), device=device)
        steps = 0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            z, y = train_z[idx].to(device), train_y[idx].to(device)
            loss = loss_fn(head(z), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
            steps += 1
        head.eval()
        with torch.no_grad():
            val_probs = head(val_z.to(device)).cpu().numpy()
        val_f1 = float(score(val_probs, val_y.numpy()))
        entry = {"epoch": epoch, "linear_loss": total.item() / max(steps, 1), "val_f1_mean": val_f1}
        history.append(entry)
        if on_epoch is not None:
            on_epoch(entry)
        if val_f1 > best_f1:  # strict: ties keep the earlier epoch
            best_f1, best_epoch = val_f1, epoch
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}

    head.load_state_dict(best_state)
    head.eval()
    return LinearEvalResult(head, best_epoch, best_f1, history, len(train_z))
