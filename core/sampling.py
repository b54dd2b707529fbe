"""Guided sampling: from noise x_0 ~ N(0, I) at t = 0 to images at t = 1.

A :class:`Sampler` is everything but the labels and w: solver, steps, time grid and guidance
method. ``lab`` is the lab's (Euler, 99 uniform steps, CFG); ``fast`` is the fewest network
evaluations measured to give the lab's quality (see :data:`SAMPLERS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from core.checkpoint import CheckpointError, load_checkpoint, read_metadata
from core.choices import (
    EVALS_PER_STEP,
    SAMPLER_PRESETS,
    SHIFT,
    check_grid,
    check_noise,
    check_shift,
    check_solver,
    check_steps,
    describe_sampler,
)
from core.grids import (
    DIGITS,
    fit_grid,
    grid_error,
    grid_key,
    grid_store_path,
    load_grids,
    save_grid,
    shifted_grid,
    uniform_grid,
)
from core.guidance import CFG, Auto, Calls, Guidance, GuidedField, VelocityFn, scalar_time
from core.path import GaussianPath
from core.runs import RunDir, RunError
from core.solvers import Callback, Step, integrate, make_step
from core.unet import UNet


@dataclass(frozen=True)
class Sampler:
    """How to sample, apart from the labels and w."""

    solver: str = "euler"
    steps: int = 99
    grid: str = "uniform"
    """uniform (the lab's), shifted (SD3's shift), or fitted (per model: :func:`fitted_grid`)."""
    shift: float = SHIFT
    guide: Guidance = field(default_factory=CFG)
    noise: float = 1.0
    """Noise level of the sde solver."""

    def __post_init__(self) -> None:
        check_solver(self.solver)
        check_steps(self.steps)
        check_grid(self.grid)
        check_shift(self.shift)
        check_noise(self.noise)
        if self.grid == "fitted" and self.solver == "sde":
            raise ValueError("a time grid is fitted for an ODE solver (euler, heun, midpoint), not sde")
        if self.grid == "fitted" and self.guide.zero_steps:
            raise ValueError("a fitted grid is fitted without zero-init: use zero-star:zero_steps=0 with it")

    def describe(self) -> str:
        """e.g. ``midpoint × 3, fitted grid, cfg``."""
        return describe_sampler(self.solver, self.steps, self.grid, self.shift, self.guide.describe())

    def evaluations(self) -> int:
        """Solver evaluations of the field per sample (skipped zero-init steps left out)."""
        return EVALS_PER_STEP[self.solver] * max(0, self.steps - self.guide.zero_steps)


SAMPLERS: dict[str, Sampler] = {name: Sampler(**spec) for name, spec in SAMPLER_PRESETS.items()}
"""Named samplers: ``lab`` is exactly the lab's; ``fast`` the fewest NFE measured to match it.

``fast`` on the bundled model (1,000 samples per cell, seed 0, w = 1…5; issue 15's note): midpoint × 6
on its fitted grid, 24 network evaluations per image (12 at w = 1) against the lab's 198, FD 1.0-2.5 %
below Euler 99's at every w; on the same fitted grids midpoint × 4 (16) is 15-22 % above it and
midpoint × 3 (12) 37-46 % above."""

FIT_GUIDANCE = 3.0
FIT_PER_CLASS = 5
FIT_SEED = 12_345
FIT_ITERATIONS = 30
FIT_LR = 0.2
"""A fitted grid is fitted once per (solver, steps, method) at w = 3 on 5 samples of each digit
from seed 12,345 (noise no evaluation draws), 30 Adam steps, and used at every w."""


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
    guide: Guidance | None = None,
    grid: Tensor | None = None,
    calls: Calls | None = None,
) -> Tensor:
    """Images ``(N, C, H, W)`` in roughly [-1, 1] for labels ``(N,)`` at guidance scale w.

    Defaults are the lab's sampler: Euler on ``linspace(0, 1, steps + 1)`` with CFG. ``grid``
    (``(steps + 1,)`` from 0 to 1) replaces the uniform grid and ``steps``. The initial noise is
    drawn on the CPU from ``seed``, so the same seed starts from the same x_0 on every device.
    A method's zero-init steps are skipped (x stays x_0 over them). ``calls`` counts the network
    rows. BatchNorm uses its running statistics (eval mode for the call, restored after).
    """
    device = next(model.parameters()).device
    cfg = model.config
    size = (len(labels), cfg.image_channels, cfg.image_size, cfg.image_size)
    x0 = torch.randn(size, generator=torch.Generator().manual_seed(seed)).to(device)
    generator = torch.Generator(device).manual_seed(seed + 1)
    path = path or GaussianPath.named("linear")
    step = make_step(solver, path, noise, generator)
    guide = guide or CFG()
    counter = calls if calls is not None else Calls()
    counter.batch = len(labels)
    field_ = guide.field(model, labels.to(device), w, cfg.null_label, path, counter)
    grid = (uniform_grid(steps) if grid is None else grid).to(device)
    was_training = model.training
    model.eval()
    try:
        return _integrate_skipping(field_, x0, grid, step, guide.zero_steps, callback)
    finally:
        model.train(was_training)


def _integrate_skipping(
    f: VelocityFn, x0: Tensor, grid: Tensor, step: Step, skip: int, callback: Callback | None
) -> Tensor:
    """:func:`integrate` over ``grid[skip:]``: zero velocity over the first ``skip`` intervals."""
    skip = min(skip, len(grid) - 1)
    if callback is None:
        return integrate(f, x0, grid[skip:], step)
    for i in range(skip):
        callback(i, grid[i], x0)
    return integrate(f, x0, grid[skip:], step, lambda i, t, x: callback(i + skip, t, x))


def sample(
    model: UNet,
    labels: Tensor,
    w: float,
    sampler: Sampler,
    grid: Tensor,
    *,
    seed: int = 0,
    callback: Callback | None = None,
    calls: Calls | None = None,
) -> Tensor:
    """:func:`generate` with everything a :class:`Sampler` says, on its resolved ``grid``."""
    return generate(
        model, labels, w, steps=sampler.steps, solver=sampler.solver, seed=seed, noise=sampler.noise,
        callback=callback, guide=sampler.guide, grid=grid, calls=calls,
    )  # fmt: skip


def resolve_grid(
    sampler: Sampler,
    model: UNet,
    checkpoint: Path | None,
    log: Callable[[str], None] = lambda line: None,
) -> Tensor:
    """The sampler's time grid ``(steps + 1,)`` on the CPU: computed, or for ``fitted`` read from the
    checkpoint's grid store, fitting (and storing, where the folder is writable) what is missing."""
    if sampler.grid == "uniform":
        return uniform_grid(sampler.steps)
    if sampler.grid == "shifted":
        return shifted_grid(sampler.steps, sampler.shift)
    store = grid_store_path(checkpoint) if checkpoint is not None else None
    key = grid_key(sampler.solver, sampler.steps, sampler.guide.describe(), FIT_GUIDANCE)
    try:
        stored = load_grids(store) if store is not None else {}
    except ValueError as error:  # a damaged store beside the weights: refused like a damaged checkpoint
        raise CheckpointError(str(error)) from None
    if key in stored:
        return torch.tensor(stored[key])
    grid, report = fitted_grid(model, sampler, log=log)
    grid = torch.tensor([round(float(t), DIGITS) for t in grid])  # as the store keeps it
    log(report)
    if store is not None:
        try:
            save_grid(store, key, grid)
            log(f"stored in {store}")
        except OSError as error:
            log(f"could not store the fitted grid in {store} ({error.strerror}); it is used this time only")
    return grid


def fitted_grid(
    model: UNet, sampler: Sampler, log: Callable[[str], None] = lambda line: None
) -> tuple[Tensor, str]:
    """A grid for ``sampler`` fitted to this model (Align-Your-Steps style): the grid whose end points
    come closest to Euler 99's from the same noise, on a calibration batch at w = 3. Returns the grid
    and a line comparing its error with the uniform grid's."""
    device = next(model.parameters()).device
    labels = torch.arange(model.config.num_classes).repeat_interleave(FIT_PER_CLASS)
    lab = replace(SAMPLERS["lab"], guide=sampler.guide)
    log(f"fitting a time grid for {sampler.solver} × {sampler.steps} ({len(labels)} samples, once)")
    target = sample(model, labels, FIT_GUIDANCE, lab, uniform_grid(lab.steps), seed=FIT_SEED)
    x0 = torch.randn(target.shape, generator=torch.Generator().manual_seed(FIT_SEED)).to(device)
    field_ = sampler.guide.field(model, labels.to(device), FIT_GUIDANCE, model.config.null_label)
    was_training, needs_grad = model.training, [p.requires_grad for p in model.parameters()]
    model.eval().requires_grad_(False)
    try:
        fresh = _fresh_each_solve(field_)
        grid = fit_grid(fresh, x0, target, sampler.solver, sampler.steps, FIT_ITERATIONS, FIT_LR, log=log)
        uniform = uniform_grid(sampler.steps)
        before, after = (grid_error(fresh, x0, target, g.to(device), sampler.solver) for g in (uniform, grid))
    finally:
        model.train(was_training)
        for p, flag in zip(model.parameters(), needs_grad, strict=True):
            p.requires_grad_(flag)
    return grid, f"fitted grid: mean squared gap to Euler 99 {after:.2e} (uniform: {before:.2e})"


def build_sampler(
    preset: str = "lab",
    *,
    solver: str | None = None,
    steps: int | None = None,
    grid: str | None = None,
    shift: float | None = None,
    guide: Guidance | None = None,
    noise: float | None = None,
) -> Sampler:
    """A named sampler with some of its settings replaced (None keeps the preset's); a one-line
    ValueError for an unknown preset or a bad setting."""
    if preset not in SAMPLERS:
        raise ValueError(f"unknown sampler preset {preset!r}; choose from {', '.join(SAMPLERS)}")
    changes = {"solver": solver, "steps": steps, "grid": grid, "shift": shift, "guide": guide, "noise": noise}
    return replace(SAMPLERS[preset], **{k: v for k, v in changes.items() if v is not None})


def with_guide_models(
    samplers: Sequence[Sampler], weights: Path, device: torch.device | str
) -> list[Sampler]:
    """The samplers ready to sample ``weights``: each ``auto`` method's guide model loaded, once
    per distinct method (:func:`with_guide_model`)."""
    guides = {g: with_guide_model(g, weights, device) for g in dict.fromkeys(s.guide for s in samplers)}
    return [replace(s, guide=guides[s.guide]) for s in samplers]


def with_guide_model(guide: Guidance, weights: Path, device: torch.device | str) -> Guidance:
    """``guide`` ready to sample: for ``auto`` without a model, its guide loaded (from its
    ``checkpoint``, else :func:`default_guide_file` of the sampled ``weights``)."""
    if not isinstance(guide, Auto) or guide.guide is not None:
        return guide
    path = Path(guide.checkpoint).expanduser() if guide.checkpoint else default_guide_file(weights)
    model, _ = load_checkpoint(path, device)
    return replace(guide, guide=model, checkpoint=str(path))


GUIDE_SHARE = 0.1
"""auto's default guide: the run's last snapshot at or before a tenth of the sampled step (on the
bundled model's recipe, step 250 of 3,500 guided best of the steps 250-1,500 tried at w = 2)."""


def default_guide_file(weights: Path) -> Path:
    """The weaker model ``auto`` guides with when none is named: for the bundled model the bundled
    guide, for a run's weights the run's last snapshot at or before :data:`GUIDE_SHARE` of their
    step (else its first snapshot). A one-line :class:`RunError` where there is none."""
    from core.assets import BUNDLED_GUIDE, BUNDLED_MODEL

    if weights.resolve() == BUNDLED_MODEL.resolve():
        return BUNDLED_GUIDE
    run = weights.parent.parent
    snapshots = RunDir(run).snapshots() if weights.parent.name == "checkpoints" else []
    step = _step_of(weights)
    earlier = [(s, p) for s, p in snapshots if step is None or s < step]
    if not earlier:
        raise RunError(
            f"auto guidance needs a weaker model and {weights} has no earlier snapshot; "
            "name one with auto:checkpoint=FILE (a run's checkpoints/step-NNNNNN.safetensors)"
        )
    target = GUIDE_SHARE * (step if step is not None else earlier[-1][0])
    before = [p for s, p in earlier if s <= target]
    return before[-1] if before else earlier[0][1]


def _step_of(weights: Path) -> int | None:
    """The training step a weights file holds, from its metadata (None where unrecorded)."""
    step = read_metadata(weights).get("step")
    return int(step) if step is not None and step.isdigit() else None


def _fresh_each_solve(f: GuidedField) -> VelocityFn:
    """``f`` with its carried state (APG's momentum) cleared at t = 0, where every solve starts."""

    def field_(x: Tensor, t: Tensor) -> Tensor:
        if scalar_time(t) == 0.0:
            f.state.clear()
        return f(x, t)

    return field_
