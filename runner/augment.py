"""Training-batch augmentations by name, read by the grammar (`augment`'s choices) and the trainer.

Each takes a batch x (B, C, H, W) float with background 0 and a torch.Generator on x's device, and
returns the batch transformed: one independent draw per image, one call for the whole batch (no
per-image Python loop), reproducible from the generator's state. Distances are in pixels of the
image as it trains (after any [models.X].input pad or resize), whatever its size.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["AUGMENTATIONS", "ELASTIC_ALPHA", "ELASTIC_SIGMA", "affine_augment", "elastic_augment",
           "elastic_displacement", "gaussian_kernel", "smoothing_matrix"]

# Simard, Steinkraus & Platt 2003, "Best practices for convolutional neural networks applied to
# visual document analysis", section 2: their values for MNIST's 28 x 28 digits.
ELASTIC_SIGMA = 4.0  # px: the Gaussian that smooths the random field (the elasticity)
ELASTIC_ALPHA = 34.0  # px: the smoothed field's scale (the intensity of the distortion)
ELASTIC_TRUNCATE = 4.0  # the kernel reaches 4 sigma each side (16 px), as scipy's gaussian_filter


def affine_augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random rotation (<= 10 deg), shift (<= 2 px) and scale (0.9-1.1), one draw per image.

    x: (B, C, H, W) float, background 0. One affine_grid + grid_sample for the whole batch.
    """
    b = x.shape[0]
    u = torch.rand(b, 4, generator=g, device=x.device) * 2 - 1  # (B, 4) in [-1, 1)
    angle = u[:, 0] * math.radians(10)
    scale = 1 + 0.1 * u[:, 1]
    shift = u[:, 2:] * (2 / (x.shape[-1] / 2))  # 2 px in grid units: W px span [-1, 1] (28 px: 2/14)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def gaussian_kernel(sigma: float, device: torch.device, truncate: float = ELASTIC_TRUNCATE) -> torch.Tensor:
    """A normalized 1-D Gaussian of `sigma` px, `truncate` sigmas each side: (2r + 1,)."""
    r = math.ceil(truncate * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def smoothing_matrix(n: int, sigma: float, device: torch.device) -> torch.Tensor:
    """(n, n): M @ v is v (n,) convolved with gaussian_kernel, zero beyond its ends (a banded Toeplitz matrix).

    The separable Gaussian as two small matrix products rather than two F.conv2d calls: the same numbers
    (to float rounding), 0.8 ms instead of 28 ms for a batch of 128 on 2 CPU cores, where a 1-channel
    33-tap convolution runs far below the machine's speed.
    """
    k = gaussian_kernel(sigma, device)
    r = len(k) // 2
    offset = torch.arange(n, device=device)[None, :] - torch.arange(n, device=device)[:, None]  # j - i
    return torch.where(offset.abs() <= r, k[(offset + r).clamp(0, len(k) - 1)], 0.0)


def elastic_displacement(b: int, h: int, w: int, g: torch.Generator, device: torch.device,
                         sigma: float = ELASTIC_SIGMA, alpha: float = ELASTIC_ALPHA) -> torch.Tensor:
    """Simard's random displacement field in px: (B, 2, H, W), channel 0 along the width, 1 along the height.

    Each component uniform in [-1, 1) per pixel, smoothed by a separable Gaussian of `sigma` px (zero
    beyond the image), then scaled by `alpha` px.
    """
    u = torch.rand(b * 2, h, w, generator=g, device=device) * 2 - 1  # (2B, H, W) in [-1, 1)
    smooth_h, smooth_w = smoothing_matrix(h, sigma, device), smoothing_matrix(w, sigma, device)
    return (smooth_h @ u @ smooth_w.T).view(b, 2, h, w) * alpha  # along the height, then the width


def elastic_augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Elastic distortion (Simard et al. 2003), one field per image: out(p) = x(p + d(p)), bilinear.

    x: (B, C, H, W) float, background 0; every channel of an image moves with the same field.
    """
    b, _, h, w = x.shape
    d = elastic_displacement(b, h, w, g, x.device)  # (B, 2, H, W) px
    cols = (torch.arange(w, device=x.device) * 2 + 1) / w - 1  # pixel centres in grid units (align_corners=False)
    rows = (torch.arange(h, device=x.device) * 2 + 1) / h - 1
    grid = torch.stack([cols + d[:, 0] * (2 / w), rows[:, None] + d[:, 1] * (2 / h)], -1)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# augment = "NAME" -> its function; "none" is the absence of one.
AUGMENTATIONS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "affine": affine_augment,
    "elastic": elastic_augment,
}
