"""The Gaussian conditional probability path of flow matching.

    x_t = α_t z + β_t ε,    ε ~ N(0, I),    t ∈ [0, 1]

z is a data point (an image ``(B, C, H, W)``), t is broadcastable against it (the
lab's ``(B, 1, 1, 1)``). With the linear schedule α_t = t, β_t = 1 − t, x_0 is noise
and x_1 is data.
"""

from __future__ import annotations

import torch
from torch import Tensor

from core.schedules import SCHEDULES, Schedule


class GaussianPath:
    """p_t(x | z) = N(α_t z, β_t² I) for a pair of schedules (α, β)."""

    def __init__(self, alpha: Schedule, beta: Schedule) -> None:
        self.alpha = alpha
        self.beta = beta

    @classmethod
    def named(cls, name: str) -> GaussianPath:
        """The path for a schedule name of :data:`core.schedules.SCHEDULES`."""
        if name not in SCHEDULES:
            raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")
        alpha_cls, beta_cls = SCHEDULES[name]
        return cls(alpha_cls(), beta_cls())

    def sample(self, z: Tensor, t: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw x_t ~ p_t(·|z). Returns ``(x_t, ε)``, both shaped like ``z``."""
        eps = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        return self.alpha.value(t) * z + self.beta.value(t) * eps, eps

    def velocity(self, z: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """Conditional vector field at x_t = α_t z + β_t ε, in its noise form.

            u_t(x_t | z) = α̇_t z + β̇_t ε

        This is d/dt x_t for fixed (z, ε): exact and finite for every t in [0, 1],
        including t = 1 where the x-form below divides by β_1 = 0. The trainer uses it.
        """
        return self.alpha.dt(t) * z + self.beta.dt(t) * eps

    def conditional_vector_field(self, x: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """u_t(x | z) = (α̇_t − β̇_t/β_t · α_t) z + (β̇_t/β_t) x, for any x.

        Computed as α̇_t z + β̇_t (x − α_t z)/β_t: the same field, but with the data
        term free of 1/β_t, so that for x on the path the only division is
        (x − α_t z)/β_t = ε. β_t is clamped at the float resolution, so t = 1 gives a
        finite (if very large off the path) value rather than inf or nan.
        """
        beta = self.beta.value(t).clamp_min(torch.finfo(x.dtype).eps)
        return self.alpha.dt(t) * z + self.beta.dt(t) * (x - self.alpha.value(t) * z) / beta

    def conditional_score(self, x: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """∇_x log p_t(x | z) = (α_t z − x) / β_t², shaped like ``x`` (infinite at β_t = 0)."""
        return (self.alpha.value(t) * z - x) / self.beta.value(t) ** 2

    def score_from_velocity(self, u: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """The marginal score that a (learned) marginal velocity implies.

        For a Gaussian path u_t(x) = a_t x + b_t ∇log p_t(x) with a_t = α̇_t/α_t and
        b_t = β_t (α̇_t β_t − β̇_t α_t)/α_t, so

            ∇log p_t(x) = (α_t u − α̇_t x) / (β_t (α̇_t β_t − β̇_t α_t)),

        written without 1/α_t so it holds at t = 0 too. Undefined where β_t = 0.
        """
        alpha, beta = self.alpha.value(t), self.beta.value(t)
        alpha_dot, beta_dot = self.alpha.dt(t), self.beta.dt(t)
        return (alpha * u - alpha_dot * x) / (beta * (alpha_dot * beta - beta_dot * alpha))

    def data_from_velocity(self, u: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """The data point x̂_1 that a (learned) velocity u at x points to, shaped like ``x``.

        From x = α_t z + β_t ε and u = α̇_t z + β̇_t ε:

            x̂_1 = (β_t u − β̇_t x) / (β_t α̇_t − β̇_t α_t),

        finite for every t (the denominator is 1 on the linear path, π/2 on the cosine one).
        """
        alpha, beta = self.alpha.value(t), self.beta.value(t)
        alpha_dot, beta_dot = self.alpha.dt(t), self.beta.dt(t)
        return (beta * u - beta_dot * x) / (beta * alpha_dot - beta_dot * alpha)
