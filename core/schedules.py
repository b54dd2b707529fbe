"""Noise schedules: the α_t and β_t of the Gaussian path x_t = α_t z + β_t ε.

A schedule is an object with a value and a time derivative, both elementwise on a
tensor of times of any shape (usually ``(B, 1, 1, 1)`` so they broadcast over images).
α runs from 0 at t = 0 to 1 at t = 1 and β the other way, so x_0 is pure noise and
x_1 is data.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

# Tensor methods only, no torch functions: configs name schedules (TrainConfig checks the name), and
# the command line reads configs without loading torch.
if TYPE_CHECKING:
    from torch import Tensor


class Schedule(ABC):
    """A scalar function of time s(t) on [0, 1] with its derivative ṡ(t)."""

    @abstractmethod
    def value(self, t: Tensor) -> Tensor:
        """s(t), same shape as ``t``."""

    @abstractmethod
    def dt(self, t: Tensor) -> Tensor:
        """ṡ(t) = d s / d t, same shape as ``t``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LinearAlpha(Schedule):
    """α_t = t, α̇_t = 1 (the lab's schedule)."""

    def value(self, t: Tensor) -> Tensor:
        return t

    def dt(self, t: Tensor) -> Tensor:
        return t.new_ones(t.shape)


class LinearBeta(Schedule):
    """β_t = 1 − t, β̇_t = −1 (the lab's schedule)."""

    def value(self, t: Tensor) -> Tensor:
        return 1 - t

    def dt(self, t: Tensor) -> Tensor:
        return -t.new_ones(t.shape)


class CosineAlpha(Schedule):
    """α_t = sin(πt/2), α̇_t = (π/2) cos(πt/2)."""

    def value(self, t: Tensor) -> Tensor:
        return (0.5 * math.pi * t).sin()

    def dt(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * (0.5 * math.pi * t).cos()


class CosineBeta(Schedule):
    """β_t = cos(πt/2), β̇_t = −(π/2) sin(πt/2)."""

    def value(self, t: Tensor) -> Tensor:
        return (0.5 * math.pi * t).cos()

    def dt(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * (0.5 * math.pi * t).sin()


SCHEDULES: dict[str, tuple[type[Schedule], type[Schedule]]] = {
    "linear": (LinearAlpha, LinearBeta),
    "cosine": (CosineAlpha, CosineBeta),
}
"""Named (α, β) pairs, the names used in configs and on the command line."""
