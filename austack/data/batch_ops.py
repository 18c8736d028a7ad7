"""Image operations over a whole batch with one parameter per sample, on any device.

Images are float [N, 3, H, W] in [0, 1] unless said otherwise; per-sample factors are tensors
[N] on the images' device. The `*_` functions work in place, since every extra copy of a
batch costs a pass over memory on the CPU. Colour maths follows torchvision's definitions
(ITU-R 601 grey, blend-with-grey contrast and saturation). `BatchAugment` applies the colour
operations through `colour_transforms` (one affine map per view); the one-operation-at-a-time
references it is tested against live in `tests/colour_oracles.py`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

GREY_WEIGHTS = (0.2989, 0.587, 0.114)   # torchvision's rgb_to_grayscale


def crop_windows(images: torch.Tensor, size: int) -> torch.Tensor:
    """Every size x size window of the batch and of its mirror image: [2B, C, P, P, size, size].

    A view (no copy) apart from the mirrored half; `crop_flip` picks one window per view.
    """
    return torch.cat([images, images.flip(-1)]).unfold(2, size, 1).unfold(3, size, 1)


def crop_flip(windows: torch.Tensor, source: torch.Tensor, top: torch.Tensor, left: torch.Tensor,
              flip: torch.Tensor) -> torch.Tensor:
    """Out[n] = image source[n] cropped at (top[n], left[n]), mirrored if flip[n]: [N, C, size, size].

    One indexing call over `crop_windows`: a mirrored crop is the window of the mirrored image
    at the mirrored offset. Works on any dtype: crop before converting to float.
    """
    n_images, positions = windows.shape[0] // 2, windows.shape[3]
    left = torch.where(flip, positions - 1 - left, left)
    return windows[source + n_images * flip, :, top, left]


# RGB -> YIQ (NTSC). A hue rotation in YIQ keeps luma Y and turns the chroma plane (I, Q).
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_INV = torch.linalg.inv(_YIQ)   # inverted once on the host: linalg.inv on a GPU syncs to check it
_CONSTANTS: dict[torch.device, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _colour_constants(dev: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grey weights, YIQ, YIQ^-1) on `dev`, copied there once: a copy from the host per batch
    would make every training step wait for the GPU."""
    if dev not in _CONSTANTS:
        _CONSTANTS[dev] = (torch.tensor(GREY_WEIGHTS).to(dev), _YIQ.to(dev), _YIQ_INV.to(dev))
    return _CONSTANTS[dev]


def colour_transforms(order: list[int], brightness: torch.Tensor, contrast: torch.Tensor,
                      saturation: torch.Tensor, hue: torch.Tensor, gray: torch.Tensor,
                      channel_means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour jitter and grayscale of N images as one affine map each: x' = A x + o.

    Brightness, contrast, saturation and grayscale are linear in RGB, so their composition in
    the drawn `order` (indices into brightness, contrast, saturation, hue) is exactly one 3x3
    matrix plus an offset per image; contrast's offset needs the image's mean grey, which
    follows from its channel means `channel_means` [N, 3] through the maps composed so far.
    Hue is a rotation of the chroma plane in YIQ space, the linear counterpart of torchvision's
    HSV rotation (same luma, same angle; saturated colours land slightly differently). Applying
    the result costs one batched 3x3 product, instead of a dozen passes over the pixels.
    Returns A [N, 3, 3] and o [N, 3]; clamp to [0, 1] once after applying them.
    """
    n, dev = brightness.shape[0], brightness.device
    w, yiq, yiq_inv = _colour_constants(dev)
    eye = torch.eye(3, device=dev).expand(n, 3, 3)
    to_grey = torch.ones(3, 1, device=dev) * w          # 1 w^T: every channel becomes the grey value
    a, o = eye.clone(), torch.zeros(n, 3, device=dev)
    for op in order:
        if op == 0:        # brightness: scale
            m, off = eye * brightness.view(n, 1, 1), torch.zeros_like(o)
        elif op == 1:      # contrast: blend with the image's current mean grey
            mean_grey = ((a @ channel_means.unsqueeze(2)).squeeze(2) + o) @ w
            f = contrast.view(n, 1)
            m, off = eye * f.unsqueeze(2), ((1 - f) * mean_grey.view(n, 1)).expand(n, 3)
        elif op == 2:      # saturation: blend with the pixel's grey
            f = saturation.view(n, 1, 1)
            m, off = f * eye + (1 - f) * to_grey, torch.zeros_like(o)
        else:              # hue: rotate (I, Q) by 2 pi * shift
            c, s = torch.cos(2 * torch.pi * hue), torch.sin(2 * torch.pi * hue)
            rot = eye.clone()
            rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
            m, off = yiq_inv @ rot @ yiq, torch.zeros_like(o)
        a, o = m @ a, (m @ o.unsqueeze(2)).squeeze(2) + off
    g = gray.view(n, 1, 1).to(a.dtype)
    a = g * (to_grey @ a) + (1 - g) * a
    o = g.view(n, 1) * (o @ w).view(n, 1).expand(n, 3) + (1 - g.view(n, 1)) * o
    return a, o


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels [N, 2*radius + 1], one per sigma."""
    t = torch.arange(-radius, radius + 1, device=sigma.device, dtype=sigma.dtype)
    k = torch.exp(-0.5 * (t[None, :] / sigma[:, None]) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def blur(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a kernel per sample, reflect padding (torchvision's).

    On a GPU: two grouped depthwise convolutions over the whole batch. On the CPU: OpenCV's
    separable filter per image plane, about 3x faster there than the convolutions (measured:
    38 against 115 ms for 16 views of 224 px, one thread), with the same result to 1e-6.
    """
    if x.device.type == "cpu" and x.dtype == torch.float32:
        return _blur_planes_cv2(x, kernels)
    n, c, h, w = x.shape
    taps = kernels.shape[1]
    r = taps // 2
    weight = kernels.to(x.dtype).repeat_interleave(c, dim=0)          # [N*C, taps]
    y = F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, weight.view(n * c, 1, taps, 1), groups=n * c)
    y = F.conv2d(y, weight.view(n * c, 1, 1, taps), groups=n * c)
    return y.view(n, c, h, w)


def _blur_planes_cv2(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    import cv2   # a dependency already (prepare); imported here to keep this module light

    out = torch.empty_like(x)
    src, dst = x.contiguous().numpy(), out.numpy()
    taps = kernels.to(torch.float32).numpy()
    centre = taps.shape[1] // 2
    for i in range(src.shape[0]):
        # a small sigma's outer taps are below float32 resolution (< 1e-7 of the centre): skip them
        r = int((taps[i, centre:] > 1e-7 * taps[i, centre]).sum()) - 1
        k = taps[i, centre - r:centre + r + 1]
        for ch in range(src.shape[1]):
            # BORDER_REFLECT_101 mirrors without repeating the edge pixel, as torch's "reflect"
            cv2.sepFilter2D(src[i, ch], -1, k, k, dst=dst[i, ch], borderType=cv2.BORDER_REFLECT_101)
    return out
