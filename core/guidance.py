"""Guidance: how network calls at (x, t) become the velocity the solver follows.

The lab's classifier-free guidance (Ho & Salimans 2022) mixes the conditional and the null field,

    ũ_t(x | y) = u_t(x | ∅) + w (u_t(x | y) − u_t(x | ∅)),

and the later methods here change what is mixed, when, or how much. Each method is a small frozen
dataclass of its parameters; the guidance scale w is given with the labels when a field is made
(:meth:`Guidance.field`), so one method object serves every w. At w = 1 every method is the
conditional field (one network row per sample), which is what "no guidance" means for each.

Network work is counted in rows: :class:`Network` adds the batch size of every call, so
:attr:`Calls.nfe` is the number of network evaluations per sample actually spent. The conditional and
null rows go through the network as one batch (the same computation as the lab's two calls when
BatchNorm uses its running statistics), and rows labelled ∅ are not duplicated.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from core.path import GaussianPath

VelocityFn = Callable[[Tensor, Tensor], Tensor]
"""A vector field (x ``(B, C, H, W)``, t ``(B,)``) → ``(B, C, H, W)``."""


class Network:
    """A model evaluated for a fixed batch of labels y ``(B,)``, counting the rows it is called on."""

    def __init__(self, model: nn.Module, y: Tensor, null_label: int, counter: Calls) -> None:
        self.model, self.y, self.null_label, self.counter = model, y, null_label, counter
        self.null_y = torch.full_like(y, null_label)
        self.cond_rows = (y != null_label).nonzero().squeeze(1)

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        self.counter.rows += x.shape[0]
        return self.model(x, t, y)

    def cond(self, x: Tensor, t: Tensor) -> Tensor:
        """u_t(x | y) ``(B, C, H, W)``."""
        return self(x, t, self.y)

    def null(self, x: Tensor, t: Tensor) -> Tensor:
        """u_t(x | ∅) ``(B, C, H, W)``."""
        return self(x, t, self.null_y)

    def pair(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(u_t(x | y), u_t(x | ∅)) from one call of B + (number of non-∅ rows) inputs; a row
        labelled ∅ has the same tensor in both."""
        rows = self.cond_rows
        if rows.numel() == 0:
            u_null = self.null(x, t)
            return u_null, u_null
        out = self(torch.cat([x, x[rows]]), torch.cat([t, t[rows]]), torch.cat([self.null_y, self.y[rows]]))
        u_null = out[: len(x)]
        u_cond = u_null.clone()
        u_cond[rows] = out[len(x) :]
        return u_cond, u_null


@dataclass
class Calls:
    """Network rows evaluated, over every :class:`Network` that shares this counter."""

    rows: int = 0
    batch: int = 1

    @property
    def nfe(self) -> float:
        """Network evaluations per sample: rows / batch size."""
        return self.rows / self.batch


@dataclass(frozen=True)
class Guidance(ABC):
    """A guidance method's parameters. Subclasses give ``name``, ``paper`` and :meth:`velocity`."""

    name: ClassVar[str]
    paper: ClassVar[str]
    zero_steps: ClassVar[int] = 0
    """Solver steps at the start whose velocity is zero (CFG-Zero*'s zero-init): the sampler skips them."""

    def field(
        self,
        model: nn.Module,
        y: Tensor,
        w: float,
        null_label: int,
        path: GaussianPath | None = None,
        counter: Calls | None = None,
    ) -> GuidedField:
        """The guided field for labels y ``(B,)`` at scale w, as a function of (x, t) for the solvers."""
        counter = counter if counter is not None else Calls(batch=len(y))
        net = Network(model, y, null_label, counter)
        return GuidedField(self, net, w, path or GaussianPath.named("linear"))

    @abstractmethod
    def velocity(self, f: GuidedField, x: Tensor, t: Tensor) -> Tensor:
        """The guided velocity ``(B, C, H, W)`` at x ``(B, C, H, W)``, t ``(B,)`` (w ≠ 1)."""

    def describe(self) -> str:
        """``name`` or ``name:key=value,…`` with the parameters that differ from the defaults:
        the form :func:`parse_guidance` reads."""
        changed = [
            f"{p.name}={_format(getattr(self, p.name))}"
            for p in fields(self)
            if p.repr and getattr(self, p.name) != p.default
        ]
        return self.name + (":" + ",".join(changed) if changed else "")


@dataclass
class GuidedField:
    """A method applied to one network and label batch at scale w: callable as f(x, t)."""

    method: Guidance
    net: Network
    w: float
    path: GaussianPath
    state: dict[str, Any] = field(default_factory=dict)
    """What a method carries from one call to the next (APG's momentum, auto's guide network)."""

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        if self.w == 1.0:
            return self.net.cond(x, t)
        return self.method.velocity(self, x, t)


def scalar_time(t: Tensor) -> float:
    """The batch's common time (the solvers give every row the same t)."""
    return float(t.detach().reshape(-1)[0])


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner products ``(B, 1, 1, 1)`` of ``(B, C, H, W)`` tensors."""
    return (a * b).flatten(1).sum(1).view(-1, *([1] * (a.dim() - 1)))


@dataclass(frozen=True)
class CFG(Guidance):
    """Classifier-free guidance, the lab's: ũ = u(x|∅) + w (u(x|y) − u(x|∅)).

    Ho & Salimans, "Classifier-Free Diffusion Guidance" (2022). Two network rows per sample per
    evaluation (one at w = 0 or 1).
    """

    name: ClassVar[str] = "cfg"
    paper: ClassVar[str] = "Ho & Salimans 2022, Classifier-Free Diffusion Guidance"

    def velocity(self, f: GuidedField, x: Tensor, t: Tensor) -> Tensor:
        if f.w == 0.0:
            return f.net.null(x, t)
        u_cond, u_null = f.net.pair(x, t)
        return torch.lerp(u_null, u_cond, f.w)


@dataclass(frozen=True)
class Interval(Guidance):
    """CFG only while start ≤ t ≤ end; the conditional field u(x|y) elsewhere (one row, not two).

    Kynkäänniemi et al., "Applying Guidance in a Limited Interval Improves Sample and Distribution
    Quality in Diffusion Models" (NeurIPS 2024): guidance at high noise pulls every sample towards
    the same few modes, and at low noise it does little; EDM2's interval σ ∈ (0.28, 5.42] is
    t ∈ [0.16, 0.78) on our linear path (σ = (1 − t)/t, t = 0 is noise). start = 0, end = 1 is CFG.
    """

    name: ClassVar[str] = "interval"
    paper: ClassVar[str] = "Kynkäänniemi et al. 2024, Applying Guidance in a Limited Interval"
    start: float = 0.2
    end: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 <= self.start < self.end <= 1.0:
            raise ValueError(
                f"interval needs 0 <= start < end <= 1, not start={self.start:g} end={self.end:g}"
            )

    def velocity(self, f: GuidedField, x: Tensor, t: Tensor) -> Tensor:
        t_now = scalar_time(t)  # grid times are float32: 0.8 is 0.8000000119
        if self.start - 1e-6 <= t_now <= self.end + 1e-6:
            return CFG().velocity(f, x, t)
        return f.net.cond(x, t)


@dataclass(frozen=True)
class ZeroStar(Guidance):
    """CFG-Zero*: the null field scaled by the optimal s*, and zero velocity for the first steps.

        s* = ⟨u(x|y), u(x|∅)⟩ / ‖u(x|∅)‖²      (per sample)
        ũ = s* u(x|∅) + w (u(x|y) − s* u(x|∅))

    Fan et al., "CFG-Zero*: Improved Classifier-Free Guidance for Flow Matching Models" (2025).
    s* is the scale that brings s·u(x|∅) closest to u(x|y), which corrects a null field that is
    off in magnitude early in sampling; the first ``zero_steps`` solver steps are skipped (their
    velocity is zero: the learned field is least accurate there), which also saves their calls.
    With u(x|y) = u(x|∅), s* = 1 and ũ = u.
    """

    name: ClassVar[str] = "zero-star"
    paper: ClassVar[str] = "Fan et al. 2025, CFG-Zero*"
    zero_steps: int = 1  # type: ignore[misc]  # a parameter here, a class constant elsewhere

    def __post_init__(self) -> None:
        if self.zero_steps < 0:
            raise ValueError(f"zero-star's zero_steps must be 0 or more, not {self.zero_steps}")

    def velocity(self, f: GuidedField, x: Tensor, t: Tensor) -> Tensor:
        u_cond, u_null = f.net.pair(x, t)
        s = _dot(u_cond, u_null) / _dot(u_null, u_null).clamp_min(1e-12)
        scaled = s * u_null
        return scaled + f.w * (u_cond - scaled)


@dataclass(frozen=True)
class APG(Guidance):
    """Adaptive projected guidance: keep the guidance update orthogonal to the conditional image.

        Δ = u(x|y) − u(x|∅);   with momentum β: Δ ← Δ + β Δ_prev (a running sum, β < 0 as in the paper)
        Δ ← Δ · min(1, r / ‖Δ‖)                                  (rescale to norm at most r)
        Δ = Δ∥ + Δ⊥, Δ∥ the component along x̂_1(x|y), the predicted image
        ũ = u(x|y) + (w − 1)(Δ⊥ + η Δ∥)

    Sadat et al., "Eliminating Oversaturation and Artifacts of High Guidance Scales in Diffusion
    Models" (ICLR 2025). The parallel part is what oversaturates; η = 1, r = ∞, β = 0 is CFG. The
    paper works on the denoised prediction; the projection here is onto the same direction
    (x̂_1 from the path, exact for any t), while the rescale and momentum act on Δ in velocity
    units, which stays finite where x̂_1's scale 1/(α̇ − β̇ α/β) would blow up at t = 1. The running
    sum takes every evaluation of the field (two a step for midpoint and Heun).
    """

    name: ClassVar[str] = "apg"
    paper: ClassVar[str] = "Sadat et al. 2025, Adaptive Projected Guidance"
    eta: float = 0.0
    rescale: float = math.inf
    momentum: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.eta):
            raise ValueError(f"apg's eta must be a finite number, not {self.eta}")
        if not self.rescale > 0:
            raise ValueError(f"apg's rescale must be above 0 (inf: no rescale), not {self.rescale:g}")
        if not -1.0 < self.momentum < 1.0:
            raise ValueError(f"apg's momentum must lie in (-1, 1), not {self.momentum:g}")

    def velocity(self, f: GuidedField, x: Tensor, t: Tensor) -> Tensor:
        u_cond, u_null = f.net.pair(x, t)
        delta = u_cond - u_null
        if self.momentum:
            delta = delta + self.momentum * f.state.get("running", torch.zeros_like(delta))
            f.state["running"] = delta
        if math.isfinite(self.rescale):
            norm = delta.flatten(1).norm(dim=1).view(-1, *([1] * (delta.dim() - 1)))
            delta = delta * (self.rescale / norm.clamp_min(1e-12)).clamp(max=1.0)
        image = f.path.data_from_velocity(u_cond, x, t.view(-1, *([1] * (x.dim() - 1))))
        parallel = _dot(delta, image) / _dot(image, image).clamp_min(1e-12) * image
        return u_cond + (f.w - 1.0) * (delta - parallel + self.eta * parallel)


@dataclass(frozen=True)
class Auto(Guidance):
    """Autoguidance: guide the model with a weaker version of itself instead of the null label.

        ũ = u_guide(x|y) + w (u(x|y) − u_guide(x|y))

    Karras et al., "Guiding a Diffusion Model with a Bad Version of Itself" (NeurIPS 2024). The
    guide (here an earlier snapshot of the same run) makes the same kinds of errors, only more, so
    the difference points away from them without the loss of variety that CFG's null field
    causes. Guided by the model itself it is the conditional field. Two rows per sample, one in
    each network. It wants a smaller w than CFG: on the bundled model with its step-250 guide, FD
    66-70 at w = 1.5-2 (CFG's best: 125), but the samples fall apart from w = 3 on.
    """

    name: ClassVar[str] = "auto"
    paper: ClassVar[str] = "Karras et al. 2024, Autoguidance"
    guide: nn.Module | None = field(default=None, repr=False, compare=False)
    checkpoint: str = ""
    """Where the guide came from (a snapshot file), for the record."""

    def velocity(self, f: GuidedField, x: Tensor, t: Tensor) -> Tensor:
        if self.guide is None:
            raise ValueError("auto guidance needs a guide model (an earlier snapshot of the run)")
        if "guide" not in f.state:  # once per field: Network finds the conditional rows with a sync
            f.state["guide"] = Network(self.guide, f.net.y, f.net.null_label, f.net.counter)
        u_guide = f.state["guide"].cond(x, t)
        return torch.lerp(u_guide, f.net.cond(x, t), f.w)


METHODS: dict[str, type[Guidance]] = {m.name: m for m in (CFG, Interval, ZeroStar, APG, Auto)}
"""Every method by the name used on the command line and in the app."""


def _format(value: object) -> str:
    """A parameter as :func:`parse_guidance` reads it back exactly."""
    if not isinstance(value, float):
        return str(value)
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def parameters(method: type[Guidance]) -> dict[str, object]:
    """A method's settable parameters and their defaults (auto's guide model is not one)."""
    return {p.name: p.default for p in fields(method) if p.repr}


def parse_guidance(spec: str) -> Guidance:
    """A method from ``name`` or ``name:key=value,key=value`` (e.g. ``interval:start=0.3,end=0.9``);
    a ValueError of one line naming the problem for an unknown method, key or value."""
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in METHODS:
        raise ValueError(f"unknown guidance {name!r}; choose from {', '.join(METHODS)}")
    method = METHODS[name]
    allowed = parameters(method)
    values: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if key in values:
            raise ValueError(f"{name}'s {key} is given twice")
        if not eq or key not in allowed:
            keys = ", ".join(allowed) or "none"
            raise ValueError(f"{name} takes key=value parameters ({keys}), not {item!r}")
        values[key] = _parse_value(name, key, text.strip(), allowed[key])
    return method(**values)


def _parse_value(name: str, key: str, text: str, default: object) -> object:
    kind = type(default)
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(
            f"{name}'s {key} must be {'an integer' if kind is int else 'a number'}, not {text!r}"
        ) from None
    if kind is float and math.isnan(value):  # type: ignore[arg-type]
        raise ValueError(f"{name}'s {key} must be a number, not {text!r}")
    return value


def guided_velocity(model: nn.Module, x: Tensor, t: Tensor, y: Tensor, w: float, null_label: int) -> Tensor:
    """The lab's CFG velocity for a batch. x ``(B, C, H, W)``, t ``(B,)``, y ``(B,)`` → ``(B, C, H, W)``."""
    return CFG().field(model, y, w, null_label)(x, t)
