"""Controlled damage to real images, to check that a quality measure sees it (``cfg-tui eval check``).

Images are ``(N, 1, H, W)`` in [-1, 1] (background −1); strengths are in pixels or in intensity
units of [0, 1], as a reader would state them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def blur(images: Tensor, sigma: float) -> Tensor:
    """A Gaussian blur of standard deviation ``sigma`` pixels (separable, edges replicated). Each
    weight is the Gaussian's mass over its pixel, not its value at the centre: at σ = 0.3 px the point
    samples would be 0.4 % on each side, a blur of nothing, while the mass is 5 %."""
    radius = max(1, math.ceil(3 * sigma))
    edges = torch.arange(-radius - 0.5, radius + 1.0, dtype=torch.float64) / (sigma * math.sqrt(2))
    mass = torch.special.erf(edges).diff() / 2
    kernel = (mass / mass.sum()).to(images.dtype).to(images.device)
    padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    return F.conv2d(rows, kernel.view(1, 1, -1, 1))


def noise(images: Tensor, sigma: float, seed: int = 0) -> Tensor:
    """Additive Gaussian noise of ``sigma`` in [0, 1] intensity units, clamped to the valid range."""
    generator = torch.Generator(images.device).manual_seed(seed)
    eps = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return (images + 2 * sigma * eps).clamp(-1, 1)


def quantise(images: Tensor, levels: int) -> Tensor:
    """Intensities rounded to ``levels`` evenly spaced values (4: black, two greys, white)."""
    unit = (images + 1) / 2
    return (unit * (levels - 1)).round() / (levels - 1) * 2 - 1


def shift(images: Tensor, pixels: int) -> Tensor:
    """Moved right by ``pixels`` (what comes in is background)."""
    moved = torch.full_like(images, -1.0)
    moved[..., pixels:] = images[..., : images.shape[-1] - pixels]
    return moved


DAMAGES: dict[str, tuple[str, tuple[float, ...]]] = {
    "blur": ("σ px", (0.3, 0.6, 1.0)),
    "noise": ("σ", (0.02, 0.05, 0.1)),
    "quantise": ("levels", (4,)),
    "shift": ("px", (1,)),
}
"""Each kind of damage with the unit and the strengths checked, mildest first."""


def damaged(images: Tensor, kind: str, strength: float) -> Tensor:
    if kind == "blur":
        return blur(images, strength)
    if kind == "noise":
        return noise(images, strength)
    if kind == "quantise":
        return quantise(images, int(strength))
    if kind == "shift":
        return shift(images, int(strength))
    raise ValueError(f"unknown damage {kind!r}; choose from {', '.join(DAMAGES)}")
