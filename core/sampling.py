"""Guided sampling: from noise x_0 ~ N(0, I) at t = 0 to images at t = 1."""

from __future__ import annotations

import torch
from torch import Tensor

from core.guidance import guided_field
from core.path import GaussianPath
from core.solvers import Callback, integrate, make_step, time_grid
from core.unet import UNet


def generate(
    model: UNet,
    labels: Tensor,
    w: float,
    *,
    steps: int = 99,
    solver: str = "euler",
    seed: int = 0,
    path: GaussianPath | None = None,
    noise: float = 1.0,
    callback: Callback | None = None,
) -> Tensor:
    """Images ``(N, C, H, W)`` in roughly [-1, 1] for labels ``(N,)`` at guidance scale w.

    Defaults are the lab's sampler: Euler on ``linspace(0, 1, steps + 1)``. The initial
    noise is drawn on the CPU from ``seed``, so the same seed starts from the same x_0
    on every device. BatchNorm uses its running statistics (the model is put in eval
    mode for the call and restored after).
    """
    device = next(model.parameters()).device
    cfg = model.config
    size = (len(labels), cfg.image_channels, cfg.image_size, cfg.image_size)
    x0 = torch.randn(size, generator=torch.Generator().manual_seed(seed)).to(device)
    generator = torch.Generator(device).manual_seed(seed + 1)
    step = make_step(solver, path or GaussianPath.named("linear"), noise, generator)
    field = guided_field(model, labels.to(device), w, cfg.null_label)
    was_training = model.training
    model.eval()
    try:
        return integrate(field, x0, time_grid(steps, device), step, callback)
    finally:
        model.train(was_training)
