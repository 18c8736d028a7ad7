"""Two-view augmentation of a whole uint8 batch on its own device (CPU or GPU).

Training views follow the SimCLR recipe the AUNCE paper uses (section III-C2): random crop
(224 from the 256 store images), horizontal flip, colour jitter, random grayscale, Gaussian
blur, then normalisation with the encoder weights' mean/std. Every random parameter is drawn
per view from one seeded torch.Generator and applied to the whole batch at once.

Defaults (the common SimCLR/MoCo-v2 settings): jitter (0.4, 0.4, 0.4, 0.1) with p = 0.8,
grayscale p = 0.2, blur p = 0.5 with sigma in [0.1, 2.0] and a 23-tap kernel (10 % of 224).
Differences from a per-image torchvision pipeline, all in distribution only: the order of
the four jitter operations is drawn once per batch instead of once per image; jitter and
grayscale are applied as one affine colour map per view (`batch_ops.colour_transforms`), so
values are clamped to [0, 1] once at the end rather than after each operation, and hue turns
the YIQ chroma plane rather than HSV hue; blur taps further than 4 sigma_max from the centre
are dropped (they hold < 1e-4 of the kernel mass).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from ..transfer import host_to_device
from . import batch_ops as ops

# Named augmentation policies. "simclr" makes the two contrastive views AUNCE learns from;
# "basic" (random crop + flip) is what supervised AU training and linear evaluation use: colour
# and blur distortions are there to make instance discrimination hard, not to help a classifier.
POLICIES: dict[str, dict] = {
    "simclr": {},
    "basic": {"jitter_p": 0.0, "gray_p": 0.0, "blur_p": 0.0},
}

from timm.data import IMAGENET_DEFAULT_MEAN as IMAGENET_MEAN, IMAGENET_DEFAULT_STD as IMAGENET_STD  # noqa: E402


class BatchAugment(nn.Module):
    """uint8 [B, 3, S, S] -> float normalised view(s) [B, 3, crop, crop].

    resize: the stored faces are first resized to resize x resize (antialiased) when S differs,
    so the crop takes the same part of the face whatever size the store holds (the paper:
    256 -> crop 224). None: no resize.

    Train mode returns a tensor when views == 1 and a tuple of `views` tensors otherwise (view
    v of image i comes from the same source image i). Eval mode (`.eval()` or train=False)
    returns one centre crop, normalised, and draws no random numbers.
    chunk: views processed together on the CPU, where small chunks keep intermediates in the
    cache; on a GPU every view goes in one chunk. Nothing in forward waits for the GPU: random
    parameters are drawn on the host and sent over, and which views get blurred is decided there.
    """

    def __init__(self, crop: int = 224, views: int = 2, train: bool = True, *,
                 mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                 flip_p: float = 0.5, jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
                 jitter_p: float = 0.8, gray_p: float = 0.2, blur_p: float = 0.5,
                 blur_sigma: tuple[float, float] = (0.1, 2.0), blur_kernel: int = 23,
                 seed: int | None = None, chunk: int = 16, resize: int | None = None):
        super().__init__()
        if views < 1:
            raise ConfigError(f"views must be 1 or more, got {views}")
        if blur_kernel % 2 == 0 or blur_kernel < 1:
            raise ConfigError(f"blur_kernel must be odd and positive, got {blur_kernel}")
        if not 0.0 <= jitter[3] <= 0.5:
            raise ConfigError(f"hue jitter must be in [0, 0.5], got {jitter[3]}")
        if resize is not None and resize < crop:
            raise ConfigError(f"resize ({resize} px) must be at least the crop ({crop} px)")
        self.crop, self.views, self.chunk, self.resize = crop, views, chunk, resize
        self.flip_p, self.jitter, self.jitter_p = flip_p, tuple(jitter), jitter_p
        self.gray_p, self.blur_p, self.blur_sigma = gray_p, blur_p, tuple(blur_sigma)
        self.blur_radius = min(blur_kernel // 2, math.ceil(4 * blur_sigma[1]))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.generator = torch.Generator()
        self.generator.manual_seed(torch.seed() if seed is None else seed)
        self.train(train)

    @classmethod
    def from_policy(cls, policy: str, crop: int, views: int, train: bool = True, **kwargs) -> "BatchAugment":
        """A BatchAugment with the settings of a named policy (see POLICIES); kwargs override."""
        if policy not in POLICIES:
            raise ConfigError(f"unknown augmentation policy {policy!r}; expected one of {', '.join(POLICIES)}")
        return cls(crop, views, train, **{**POLICIES[policy], **kwargs})

    def manual_seed(self, seed: int) -> "BatchAugment":
        self.generator.manual_seed(seed)
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ConfigError(f"BatchAugment takes uint8 images [B, 3, S, S], got {images.dtype} "
                              f"{tuple(images.shape)}")
        if self.resize is not None and images.shape[-1] != self.resize:
            images = resize_uint8(images, self.resize)
        size = images.shape[-1]
        if images.shape[-2] != size or size < self.crop:
            raise ConfigError(f"BatchAugment(crop={self.crop}) needs square images of at least "
                              f"{self.crop} px, got {tuple(images.shape[-2:])}")
        if not self.training:
            start = (size - self.crop) // 2
            x = images[:, :, start:start + self.crop, start:start + self.crop].float().div_(255.0)
            return self._normalise_(x)
        b = images.shape[0]
        params = self._draw(b * self.views, size, images.device)
        windows = ops.crop_windows(images, self.crop)
        out = torch.empty(b * self.views, 3, self.crop, self.crop, device=images.device)
        chunk = self.chunk if images.device.type == "cpu" else len(out)
        for lo in range(0, len(out), chunk):   # chunks of views, never one image at a time
            sl = slice(lo, lo + chunk)
            self._augment_into(out[sl], windows, {k: v[sl] for k, v in params.items() if k != "order"},
                               params["order"])
        return out if self.views == 1 else tuple(out.split(b))

    def _draw(self, n: int, size: int, device: torch.device) -> dict[str, torch.Tensor]:
        """All random parameters of n views, drawn on the CPU generator, moved to `device`."""
        g, u = self.generator, lambda: torch.rand(n, generator=self.generator)
        bri, con, sat, hue = self.jitter
        jittered = u() < self.jitter_p
        p = {
            "source": torch.arange(n) % (n // self.views),
            "top": torch.randint(0, size - self.crop + 1, (n,), generator=g),
            "left": torch.randint(0, size - self.crop + 1, (n,), generator=g),
            "flip": u() < self.flip_p,
            "brightness": torch.where(jittered, _uniform(u(), max(0.0, 1 - bri), 1 + bri), 1.0),
            "contrast": torch.where(jittered, _uniform(u(), max(0.0, 1 - con), 1 + con), 1.0),
            "saturation": torch.where(jittered, _uniform(u(), max(0.0, 1 - sat), 1 + sat), 1.0),
            "hue": torch.where(jittered, _uniform(u(), -hue, hue), 0.0),
            "gray": u() < self.gray_p,
            "blur": u() < self.blur_p,
            "sigma": _uniform(u(), *self.blur_sigma),
        }
        # one host-to-device copy for all of them, from pinned memory so that it does not block
        packed = host_to_device(torch.stack([v.float() for v in p.values()]), device)
        p, blur_host = {k: packed[i].to(v.dtype) for i, (k, v) in enumerate(p.items())}, p["blur"]
        p["blur_host"] = blur_host   # indexing by a host mask needs no device sync
        p["order"] = torch.randperm(4, generator=g).tolist()   # jitter op order, one per batch
        return p

    def _augment_into(self, x: torch.Tensor, windows: torch.Tensor, p: dict, order: list[int]) -> None:
        """Write the views described by `p` into `x` (a slice of the output), in place."""
        x.copy_(ops.crop_flip(windows, p["source"], p["top"], p["left"], p["flip"]))   # 0..255
        if self.jitter_p > 0 or self.gray_p > 0:
            # jitter + grayscale as one affine colour map per view, then one clamp; the map takes
            # 0..255 values (A / 255), which saves a pass over the pixels to scale them first
            a, o = ops.colour_transforms(order, p["brightness"], p["contrast"], p["saturation"], p["hue"],
                                         p["gray"], x.mean(dim=(2, 3)).div_(255.0))
            flat = x.view(x.shape[0], 3, -1)
            flat.copy_(torch.baddbmm(o.unsqueeze(2), a.div_(255.0), flat)).clamp_(0.0, 1.0)
        else:
            x.div_(255.0)
        self._normalise_(x)      # linear per channel, so it commutes with the blur below
        blurred = p["blur_host"].nonzero().squeeze(1)
        if len(blurred):
            blurred = host_to_device(blurred, x.device)
            kernels = ops.gaussian_kernels(p["sigma"][blurred], self.blur_radius)
            x[blurred] = ops.blur(x[blurred], kernels)

    def _normalise_(self, x: torch.Tensor) -> torch.Tensor:
        return x.sub_(self.mean.to(x.device)).div_(self.std.to(x.device))

    def extra_repr(self) -> str:
        return (f"crop={self.crop}, views={self.views}, jitter={self.jitter} p={self.jitter_p}, "
                f"gray_p={self.gray_p}, blur_p={self.blur_p} sigma={self.blur_sigma}")


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [B, 3, S, S] -> uint8 [B, 3, size, size], bilinear with antialiasing."""
    x = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _uniform(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return u * (hi - lo) + lo
