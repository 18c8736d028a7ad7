"""One-colour-operation-at-a-time references for `austack.data.batch_ops.colour_transforms`.

Test oracles only: float [N, 3, H, W] images in [0, 1], one factor per sample, in place, with
torchvision's definitions (ITU-R 601 grey, blend-with-grey contrast and saturation, HSV hue).
"""
from __future__ import annotations

import torch

from austack.data.batch_ops import GREY_WEIGHTS


def grey(x: torch.Tensor) -> torch.Tensor:
    """Luma [N, 1, H, W] of RGB images [N, 3, H, W]."""
    r, g, b = x.unbind(1)
    return (r * GREY_WEIGHTS[0]).add_(g, alpha=GREY_WEIGHTS[1]).add_(b, alpha=GREY_WEIGHTS[2]).unsqueeze(1)


def _per_sample(f: torch.Tensor) -> torch.Tensor:
    return f.view(-1, 1, 1, 1)


def brightness_(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return x.mul_(_per_sample(factor)).clamp_(0.0, 1.0)


def contrast_(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with the mean of its own grey image."""
    mean = grey(x).mean(dim=(1, 2, 3), keepdim=True)
    f = _per_sample(factor)
    return x.mul_(f).add_(mean * (1.0 - f)).clamp_(0.0, 1.0)


def saturation_(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with its grey version."""
    f, g = _per_sample(factor), grey(x)
    return x.mul_(f).addcmul_(g, 1.0 - f).clamp_(0.0, 1.0)


def hue_(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue by `shift` (a fraction of a turn, torchvision's hue_factor).

    Value V (max) and chroma C (max - min) do not change under a hue rotation, so only the hue
    h in [0, 6) is needed, and channel n is V - C * clamp(2 - dist(h, c_n), 0, 1) with dist the
    distance on the hue circle to c_n (R 3, G 5, B 1). All steps are single-channel passes:
    the cheap kind on the CPU (no integer maths, no gather, no fmod).
    """
    r, g, b = x.unbind(1)
    vmax, vmin = x.amax(dim=1), x.amin(dim=1)
    chroma = vmax - vmin
    inv = chroma.clamp(min=1e-12).reciprocal_()
    h = torch.where(r == vmax, (g - b).mul_(inv),
                    torch.where(g == vmax, (b - r).mul_(inv).add_(2.0), (r - g).mul_(inv).add_(4.0)))
    h.add_(shift.view(-1, 1, 1) * 6.0)
    h.sub_(torch.floor(h / 6.0).mul_(6.0))                     # wrap to [0, 6)
    for n, centre in enumerate((3.0, 5.0, 1.0)):
        ramp = (h - centre).abs_().sub_(3.0).abs_().sub_(1.0).clamp_(0.0, 1.0)   # 2 - dist, clipped
        torch.addcmul(vmax, chroma, ramp, value=-1.0, out=x[:, n])
    return x
