"""ODE and SDE solvers for dx/dt = u_t(x) on an explicit time grid.

A step function maps (field, x ``(B, ...)``, t, h) to x at t + h, with t and h 0-d
tensors; the field is called with t expanded to ``(B,)``. :func:`integrate` walks a
grid ``t_0 < t_1 < … < t_n`` (the lab's is ``linspace(0, 1, 100)``: 99 Euler steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from core.choices import EVALS_PER_STEP as EVALS_PER_STEP
from core.choices import SOLVERS as SOLVERS
from core.choices import check_solver, check_steps
from core.guidance import VelocityFn
from core.path import GaussianPath

Step = Callable[[VelocityFn, Tensor, Tensor, Tensor], Tensor]
Callback = Callable[[int, Tensor, Tensor], None]
"""Called as ``callback(i, t_i, x_i)`` at every grid point, i = 0 … n."""


def _at(f: VelocityFn, x: Tensor, t: Tensor) -> Tensor:
    return f(x, t.expand(x.shape[0]))


def euler_step(f: VelocityFn, x: Tensor, t: Tensor, h: Tensor) -> Tensor:
    """x + h u_t(x). First order, one evaluation."""
    return x + h * _at(f, x, t)


def midpoint_step(f: VelocityFn, x: Tensor, t: Tensor, h: Tensor) -> Tensor:
    """x + h u_{t+h/2}(x + h/2 · u_t(x)). Second order, two evaluations."""
    x_mid = x + 0.5 * h * _at(f, x, t)
    return x + h * _at(f, x_mid, t + 0.5 * h)


def heun_step(f: VelocityFn, x: Tensor, t: Tensor, h: Tensor) -> Tensor:
    """x + h/2 · (k1 + k2), k1 = u_t(x), k2 = u_{t+h}(x + h k1). Second order, two evaluations."""
    k1 = _at(f, x, t)
    k2 = _at(f, x + h * k1, t + h)
    return x + 0.5 * h * (k1 + k2)


def euler_maruyama(path: GaussianPath, noise: float, generator: torch.Generator | None = None) -> Step:
    """A stochastic step that keeps the path's marginals, its score taken from the velocity.

        dX = [u_t(X) + σ_t²/2 · ∇log p_t(X)] dt + σ_t dW,    σ_t = noise · β_t

    ∇log p_t comes from :meth:`GaussianPath.score_from_velocity`. σ_t vanishes at the
    data end, so the last steps sharpen rather than add noise. ``noise = 0`` is Euler.
    """

    def step(f: VelocityFn, x: Tensor, t: Tensor, h: Tensor) -> Tensor:
        u = _at(f, x, t)
        sigma = noise * path.beta.value(t)
        drift = u + 0.5 * sigma**2 * path.score_from_velocity(u, x, t)
        dw = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + h * drift + sigma * math.sqrt(float(h)) * dw

    return step


ODE_STEPS: dict[str, Step] = {"euler": euler_step, "heun": heun_step, "midpoint": midpoint_step}


def make_step(
    solver: str,
    path: GaussianPath | None = None,
    noise: float = 1.0,
    generator: torch.Generator | None = None,
) -> Step:
    """The step function for a solver name; ``sde`` needs the path."""
    if solver == "sde":
        if path is None:
            raise ValueError("the sde solver needs the probability path")
        return euler_maruyama(path, noise, generator)
    return ODE_STEPS[check_solver(solver)]


def time_grid(steps: int, device: torch.device | str | None = None) -> Tensor:
    """``linspace(0, 1, steps + 1)``: ``steps`` intervals from noise to data."""
    return torch.linspace(0.0, 1.0, check_steps(steps) + 1, device=device)


@torch.inference_mode()
def integrate(
    f: VelocityFn, x0: Tensor, grid: Tensor, step: Step = euler_step, callback: Callback | None = None
) -> Tensor:
    """Solve dx/dt = f(x, t) from x0 at grid[0] to grid[-1]. x0 ``(B, ...)`` → ``(B, ...)``."""
    x = x0
    if callback is not None:
        callback(0, grid[0], x)
    for i in range(len(grid) - 1):
        x = step(f, x, grid[i], grid[i + 1] - grid[i])
        if callback is not None:
            callback(i + 1, grid[i + 1], x)
    return x


class Trajectory:
    """A callback that keeps x at grid points 0, every, 2·every, … and the last one, ``steps``.

    ``frames`` is then ``(T, B, ...)`` on the CPU and ``times`` ``(T,)``.
    """

    def __init__(self, steps: int, every: int = 1) -> None:
        self.steps, self.every = steps, every
        self._frames: list[Tensor] = []
        self._times: list[float] = []

    def __call__(self, i: int, t: Tensor, x: Tensor) -> None:
        if i % self.every == 0 or i == self.steps:
            self._frames.append(x.detach().float().cpu().clone())
            self._times.append(float(t))

    @property
    def frames(self) -> Tensor:
        return torch.stack(self._frames)

    @property
    def times(self) -> Tensor:
        return torch.tensor(self._times)
