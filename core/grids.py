"""Time grids for the solvers: where the steps t_0 = 0 < t_1 < … < t_n = 1 go.

Time runs from noise (t = 0) to data (t = 1). Three kinds:

- ``uniform``: ``linspace(0, 1, n + 1)``, the lab's grid.
- ``shifted``: SD3's time shift (Esser et al. 2024), more steps near the noise end.
- ``fitted``: a grid fitted to one model, solver and step count by gradient descent on
  the error against a fine reference solve, in the spirit of "Align Your Steps"
  (Sabour et al. 2024). Fitted grids are kept in a JSON file next to the checkpoint,
  one per :func:`grid_key`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from core.choices import GRIDS as GRIDS
from core.choices import check_grid as check_grid
from core.choices import check_shift
from core.files import atomic_write_text
from core.guidance import VelocityFn
from core.solvers import ODE_STEPS, Step, check_solver, check_steps, time_grid

LOG_EVERY = 50
"""fit_grid's ``log`` gets a line at iterations 0, 50, 100, … and the last."""
DIGITS = 6
"""Decimal digits kept per grid point in the store."""
MIN_STEP = 1e-5
"""The smallest interval of a fitted grid: well above float32's and the store's resolution."""

Log = Callable[[str], None]


# --- closed-form grids ---------------------------------------------------------------------------


def uniform_grid(steps: int, device: torch.device | str | None = None) -> Tensor:
    """``linspace(0, 1, steps + 1)``, float32 ``(steps + 1,)``."""
    return time_grid(steps, device)


def shifted_grid(steps: int, shift: float = 3.0, device: torch.device | str | None = None) -> Tensor:
    """SD3's shift of the uniform grid, float32 ``(steps + 1,)``.

    With the noise level σ = 1 − t, each uniform point moves to

        σ' = s σ / (1 + (s − 1) σ),    i.e.    t' = t / (1 + (s − 1)(1 − t)).

    s > 1 crowds the steps towards the noise end (t = 0), s < 1 towards the data end.
    The t form is used because it keeps t = 0, t = 1 and (for s = 1) every point exact.
    """
    check_shift(shift)
    t = uniform_grid(steps).double()
    return (t / (1.0 + (shift - 1.0) * (1.0 - t))).float().to(device)


# --- fitted grids --------------------------------------------------------------------------------


def _ode_step(solver: str) -> Step:
    """The step function of an ODE solver; the stochastic one has no fixed end point to fit."""
    if check_solver(solver) not in ODE_STEPS:
        raise ValueError(f"a time grid is fitted for an ODE solver ({', '.join(ODE_STEPS)}), not {solver!r}")
    return ODE_STEPS[solver]


def solve(f: VelocityFn, x0: Tensor, grid: Tensor, solver: str) -> Tensor:
    """x at grid[-1] from x0 ``(B, ...)`` at grid[0]; ``(B, ...)``.

    Unlike :func:`core.solvers.integrate` it follows the caller's grad mode, so with grad on
    the result is differentiable in ``grid`` (each h = t_{i+1} − t_i is a tensor op).
    """
    step = _ode_step(solver)
    grid = grid.to(x0.dtype)
    x = x0
    for i in range(len(grid) - 1):
        x = step(f, x, grid[i], grid[i + 1] - grid[i])
    return x


def grid_from_logits(logits: Tensor) -> Tensor:
    """``(n,)`` logits → ``(n + 1,)`` grid [0, cumsum(h)], h = h_min + (1 − n h_min) softmax(logits).

    The increments sum to 1 and are at least h_min = min(:data:`MIN_STEP`, 1 / 2n), so any
    logits give a strictly increasing grid, even in float32 and after the store's rounding;
    zero logits give the uniform grid. The last point is set to 1 rather than summed, so
    rounding cannot move the end.
    """
    n = logits.shape[0]
    h_min = min(MIN_STEP, 0.5 / n)
    steps = h_min + (1.0 - n * h_min) * torch.softmax(logits, dim=0)
    inner = torch.cumsum(steps, dim=0)[:-1]
    zero, one = logits.new_zeros(1), logits.new_ones(1)
    return torch.cat([zero, inner, one])


def _mse(f: VelocityFn, x0: Tensor, target: Tensor, grid: Tensor, solver: str) -> Tensor:
    return torch.mean((solve(f, x0, grid, solver) - target) ** 2)


def grid_error(f: VelocityFn, x0: Tensor, target: Tensor, grid: Tensor, solver: str) -> float:
    """mean((solve(f, x0, grid, solver) − target)²) over all elements, without grad."""
    with torch.inference_mode():
        return float(_mse(f, x0, target, grid.to(x0.device), solver))


def _check_fit(x0: Tensor, target: Tensor, iterations: int, lr: float) -> None:
    if x0.shape != target.shape:
        raise ValueError(f"x0 {tuple(x0.shape)} and target {tuple(target.shape)} differ in shape")
    if iterations < 0:
        raise ValueError(f"iterations must be 0 or more, not {iterations}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"the learning rate must be a positive number, not {lr}")


def fit_grid(
    f: VelocityFn,
    x0: Tensor,
    target: Tensor,
    solver: str,
    steps: int,
    iterations: int = 200,
    lr: float = 0.05,
    log: Log | None = None,
) -> Tensor:
    """The grid of ``steps`` intervals that best brings x0 to ``target`` with ``solver``.

    Minimises L(θ) = mean((solve(f, x0, grid(θ), solver) − target)²) over the logits θ of
    the increments, grid(θ) ≈ [0, cumsum(softmax(θ))] (:func:`grid_from_logits`), with Adam
    from θ = 0, the uniform grid. ``target`` ``(B, ...)`` is the end point of a much finer
    solve from the same x0 ``(B, ...)``. Returns the grid of lowest L seen (so never worse
    than uniform on this batch), float32 ``(steps + 1,)`` on the CPU, detached.
    """
    _ode_step(solver)
    check_steps(steps)
    _check_fit(x0, target, iterations, lr)
    # Inputs may be inference tensors (target from integrate); clones outside inference mode
    # can take part in autograd.
    with torch.inference_mode(False), torch.enable_grad():
        x0, target = x0.detach().clone(), target.detach().clone()
        dtype = x0.dtype if x0.is_floating_point() else torch.float32
        logits = torch.zeros(steps, dtype=dtype, device=x0.device, requires_grad=True)
        best = _adam_fit(f, x0, target, solver, logits, iterations, lr, log)
    return best.float().cpu()


def _adam_fit(
    f: VelocityFn,
    x0: Tensor,
    target: Tensor,
    solver: str,
    logits: Tensor,
    iterations: int,
    lr: float,
    log: Log | None,
) -> Tensor:
    """Adam on ``logits`` in place; the grid of lowest loss. The loss is taken before each
    update and once after the last, so iterations + 1 grids are scored."""
    opt = torch.optim.Adam([logits], lr=lr)
    best_loss, best_grid = math.inf, grid_from_logits(logits).detach()
    for i in range(iterations + 1):
        grid = grid_from_logits(logits)
        loss = _mse(f, x0, target, grid, solver)
        value = float(loss.detach())
        if value < best_loss:
            best_loss, best_grid = value, grid.detach().clone()
        if log is not None and (i % LOG_EVERY == 0 or i == iterations):
            log(f"grid fit {i}/{iterations}: error {value:.4g}, best {best_loss:.4g}")
        if i == iterations or not math.isfinite(value):
            break
        # autograd.grad rather than backward: a field whose parameters need grad gets no .grad.
        (logits.grad,) = torch.autograd.grad(loss, [logits])
        opt.step()
    return best_grid


# --- storage next to a checkpoint ----------------------------------------------------------------


def grid_store_path(checkpoint: Path) -> Path:
    """``model.safetensors`` → ``model.grids.json``, in the same folder."""
    return Path(checkpoint).with_suffix(".grids.json")


def grid_key(solver: str, steps: int, guide: str, w: float) -> str:
    """The store's key of a grid, e.g. ``midpoint:3:cfg:w3`` (w written by ``:g``)."""
    return f"{solver}:{steps}:{guide}:w{w:g}"


def _key_steps(key: str) -> int:
    """The step count in a :func:`grid_key`; ValueError (no file name) if it has none. The method
    part may hold colons of its own (``interval:start=0.3``)."""
    parts = key.split(":")
    if len(parts) < 4 or not parts[1].isdigit() or int(parts[1]) < 1 or not parts[-1].startswith("w"):
        raise ValueError(f"key {key!r} is not solver:steps:guide:wW")
    return int(parts[1])


def _check_values(key: str, values: object) -> list[float]:
    """A stored grid for ``key``: floats, finite, exactly 0 … exactly 1, strictly increasing,
    steps + 1 long. ValueError with a one-line reason (no file name) otherwise."""
    steps = _key_steps(key)
    ok = isinstance(values, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )
    if not ok:
        raise ValueError(f"grid {key!r} is not a list of numbers")
    grid = [float(v) for v in values]
    if not all(math.isfinite(v) for v in grid):
        raise ValueError(f"grid {key!r} has a value that is not finite")
    if len(grid) != steps + 1:
        raise ValueError(f"grid {key!r} has {len(grid)} points, not {steps + 1}")
    if grid[0] != 0.0 or grid[-1] != 1.0:
        raise ValueError(f"grid {key!r} runs from {grid[0]} to {grid[-1]}, not from 0 to 1")
    if any(b <= a for a, b in itertools.pairwise(grid)):
        raise ValueError(f"grid {key!r} is not strictly increasing")
    return grid


def _read_json(path: Path) -> object | None:
    """The parsed file, None if it does not exist; one-line ValueError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise ValueError(f"grid file {path}: cannot be read ({reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"grid file {path}: not JSON ({e.msg}, line {e.lineno})") from None


def load_grids(path: Path) -> dict[str, list[float]]:
    """The grids stored at ``path`` by key; {} if there is no file.

    ValueError, one line naming the file, if it is not a JSON object of valid grids.
    """
    path = Path(path)
    data = _read_json(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"grid file {path}: not a JSON object of grids")
    try:
        return {key: _check_values(key, values) for key, values in data.items()}
    except ValueError as e:
        raise ValueError(f"grid file {path}: {e}") from None


def save_grid(path: Path, key: str, grid: Tensor | Sequence[float]) -> None:
    """Store ``grid`` under ``key`` at ``path``, keeping the other keys; atomic.

    Points are rounded to :data:`DIGITS` decimals. A grid that would not load back, or an
    existing file that does not load, is refused with a ValueError and nothing is written.
    """
    path = Path(path)
    values = grid.tolist() if isinstance(grid, Tensor) else list(grid)
    rounded = [round(float(v), DIGITS) for v in values]
    try:
        checked = _check_values(key, rounded)
    except ValueError as e:
        raise ValueError(f"cannot store in {path}: {e}") from None
    grids = load_grids(path)
    grids[key] = checked
    atomic_write_text(path, json.dumps(grids, indent=2, sort_keys=True) + "\n")
