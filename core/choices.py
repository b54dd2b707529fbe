"""The names a user chooses among — solvers, time grids, sampler presets, feature layers — and their
checks, importable without torch.

``cfg-tui --help`` lists these names and must start in well under a second, which it cannot if
anything it imports loads torch (2-3 s alone). The modules that implement each choice
(:mod:`core.solvers`, :mod:`core.grids`, :mod:`core.sampling`, :mod:`core.metrics`) take their names
from here, so there is still one list of each.
"""

from __future__ import annotations

import math

from core.configs import (
    GRID_SHIFT,
    GUIDANCE,
    NOISE,
    PANELS,
    PER_CLASS,
    SEEDS,
    SOLVER_STEPS,
    UNetConfig,
    check_memory,
    sampling_bytes,
)

EVALS_PER_STEP = {"euler": 1, "heun": 2, "midpoint": 2, "sde": 1}
"""Network evaluations a step of each solver costs."""
SOLVERS = tuple(EVALS_PER_STEP)

GRIDS = ("uniform", "shifted", "fitted")
SHIFT = 3.0
"""The shifted grid's default shift s (SD3's)."""

SAMPLER_PRESETS: dict[str, dict] = {
    "lab": {"solver": "euler", "steps": 99, "grid": "uniform"},
    "fast": {"solver": "midpoint", "steps": 6, "grid": "fitted"},
}
"""The named samplers' settings, each with CFG (``core.sampling.SAMPLERS`` is made from these)."""

FEATURE_LAYERS = ("combined", "penultimate", "pool")
"""Where features are read. ``penultimate`` (the layer before the logits) and ``pool`` (the global
average of the last convolution) are semantic: trained to ignore shifts and strokes, they barely see
a 1-pixel shift, 4 grey levels or a slight blur (``cfg-tui eval check``: under 1 spread). ``combined``
adds what those miss and standardises each part: the penultimate layer, the mean and standard
deviation of each first-stage channel (strokes, grey levels, noise), and the second stage averaged
over a 2 × 2 grid (where things are); 448 wide. The classifier file names the one to use."""


def check_solver(solver: str) -> str:
    """``solver`` if it is one of :data:`SOLVERS`, else a one-line ValueError."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose from {', '.join(SOLVERS)}")
    return solver


def check_steps(steps: int) -> int:
    """A step count of a solver: 1 to :data:`core.configs.SOLVER_STEPS`' high (the grid and the
    progress are as long as it)."""
    return int(SOLVER_STEPS.check("steps", steps))


def check_grid(name: str) -> str:
    """``name`` if it is one of :data:`GRIDS`, else a one-line ValueError."""
    if name not in GRIDS:
        raise ValueError(f"unknown time grid {name!r}; choose from {', '.join(GRIDS)}")
    return name


def check_shift(shift: float) -> float:
    """``shift`` if it is a shift of the shifted grid (a finite number above 0), else a one-line
    ValueError."""
    if not (math.isfinite(shift) and shift > 0):
        raise ValueError(f"the grid's shift must be a number above 0, not {shift:g}")
    return GRID_SHIFT.check("the grid's shift", shift)


def check_noise(noise: float) -> float:
    """The sde solver's noise level: a finite number from 0 to :data:`core.configs.NOISE`' high."""
    return NOISE.check("noise", noise)


def check_guidance(scales: tuple[float, ...]) -> tuple[float, ...]:
    """Guidance scales w, each finite and inside :data:`core.configs.GUIDANCE`, as many as
    :data:`core.configs.PANELS` allows (each is a panel of samples, kept until all are drawn)."""
    PANELS.check("the number of guidance scales", len(scales))
    for w in scales:
        GUIDANCE.check("guidance", w)
    return scales


def check_seed(seed: int, name: str = "seed") -> int:
    """A seed of the initial noise: 0 to 2^63 - 1 (torch's generators take 64 bits)."""
    return int(SEEDS.check(name, seed))


def check_per_class(per_class: int, low: int = 1) -> int:
    """Samples per class: ``low`` (2 where a spread is measured) to :data:`core.configs.PER_CLASS`' high."""
    if per_class < low:
        raise ValueError(f"per class must be at least {low}, not {per_class}")
    return int(PER_CLASS.check("per class", per_class))


def check_sampling_memory(config: UNetConfig, images: int, device_type: str = "cpu") -> int:
    """``images`` sampled at once by a model of ``config``: refused in one line, with the estimate,
    when they would not fit in the memory free on ``device_type``."""
    check_memory(f"sampling {images:,} images at once", sampling_bytes(config, images), device_type)
    return images


def check_feature_layer(name: str) -> str:
    """``name`` if it is one of :data:`FEATURE_LAYERS`, else a one-line ValueError."""
    if name not in FEATURE_LAYERS:
        raise ValueError(f"feature layer must be one of {', '.join(FEATURE_LAYERS)}, not {name!r}")
    return name


def describe_sampler(solver: str, steps: int, grid: str, shift: float = SHIFT, guide: str = "cfg") -> str:
    """e.g. ``midpoint × 3, fitted grid, cfg`` (``guide``: the method's ``describe()``)."""
    grid_text = f"shifted grid (s {shift:g})" if grid == "shifted" else f"{grid} grid"
    return f"{solver} × {steps}, {grid_text}, {guide}"


def describe_preset(name: str) -> str:
    """A named sampler as :func:`describe_sampler` puts it (what ``SAMPLERS[name].describe()`` says)."""
    return describe_sampler(**SAMPLER_PRESETS[name])
