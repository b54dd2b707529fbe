"""Classifier-free guidance: one guided velocity from one network call.

    ũ_t(x | y) = (1 − w) u^θ_t(x | ∅) + w u^θ_t(x | y)

The lab calls the network twice per step (once with y, once with ∅). Here the
conditional rows and the null rows go through the network as one batch, which is
the same computation when BatchNorm uses running statistics (eval mode).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

VelocityFn = Callable[[Tensor, Tensor], Tensor]
"""A vector field (x ``(B, C, H, W)``, t ``(B,)``) → ``(B, C, H, W)``."""


def guided_velocity(model: nn.Module, x: Tensor, t: Tensor, y: Tensor, w: float, null_label: int) -> Tensor:
    """ũ_t(x | y) for a batch. x ``(B, C, H, W)``, t ``(B,)``, y ``(B,)`` int64 → ``(B, C, H, W)``.

    Rows whose label is already ∅ need no conditional half (their guided field is
    u(x|∅) for any w), so the network sees B + (number of non-null rows) inputs in a
    single call; w = 1, w = 0 or an all-∅ batch is one plain call of B rows.
    """
    if w == 1.0:
        return model(x, t, y)
    null_y = torch.full_like(y, null_label)
    cond_rows = (y != null_label).nonzero().squeeze(1)
    if w == 0.0 or cond_rows.numel() == 0:
        return model(x, t, null_y)
    out = model(torch.cat([x, x[cond_rows]]), torch.cat([t, t[cond_rows]]), torch.cat([null_y, y[cond_rows]]))
    u_null, u_cond = out[: len(x)], out[len(x) :]
    guided = u_null.clone()
    guided[cond_rows] = torch.lerp(u_null[cond_rows], u_cond, w)
    return guided


def guided_field(model: nn.Module, y: Tensor, w: float, null_label: int) -> VelocityFn:
    """The guided field for fixed labels as a function of (x, t), for the solvers."""

    def field(x: Tensor, t: Tensor) -> Tensor:
        return guided_velocity(model, x, t, y, w, null_label)

    return field
