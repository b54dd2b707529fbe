import math

import pytest
import torch

from core.path import GaussianPath
from core.solvers import (
    EVALS_PER_STEP,
    Trajectory,
    euler_maruyama,
    euler_step,
    heun_step,
    integrate,
    make_step,
    midpoint_step,
    time_grid,
)

A = -1.3  # dx/dt = A x  →  x(1) = x(0) e^A


def linear_field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return A * x


def _error(step, n: int) -> float:
    x0 = torch.tensor([[1.0], [-2.0]], dtype=torch.float64)
    x1 = integrate(linear_field, x0, time_grid(n).double(), step)
    return float((x1 - x0 * math.exp(A)).abs().max())


def test_labs_grid_is_99_steps_of_linspace() -> None:
    torch.testing.assert_close(time_grid(99), torch.linspace(0, 1, 100))
    with pytest.raises(ValueError, match="steps must be at least 1"):
        time_grid(0)


@pytest.mark.parametrize("step", [euler_step, heun_step, midpoint_step])
def test_solvers_converge_to_the_closed_form(step) -> None:
    assert _error(step, 200) < 1e-2
    assert _error(step, 200) < _error(step, 20)


def test_euler_is_first_order() -> None:
    ratio = _error(euler_step, 40) / _error(euler_step, 80)
    assert 1.8 < ratio < 2.2


@pytest.mark.parametrize("step", [heun_step, midpoint_step])
def test_second_order_error_falls_four_times_when_step_halves(step) -> None:
    ratio = _error(step, 40) / _error(step, 80)
    assert 3.6 < ratio < 4.4
    assert _error(step, 20) < _error(euler_step, 20) / 10


def test_callback_sees_every_grid_point_and_trajectory_records() -> None:
    seen: list[tuple[int, float]] = []
    x0 = torch.ones(3, 2)
    integrate(linear_field, x0, time_grid(10), euler_step, lambda i, t, x: seen.append((i, float(t))))
    assert [i for i, _ in seen] == list(range(11))
    assert seen[-1][1] == pytest.approx(1.0)
    traj = Trajectory(steps=10, every=4)
    x1 = integrate(linear_field, x0, time_grid(10), euler_step, traj)
    assert traj.frames.shape == (4, 3, 2)  # grid points 0, 4, 8 and the last, 10
    torch.testing.assert_close(traj.times, torch.tensor([0.0, 0.4, 0.8, 1.0]))
    torch.testing.assert_close(traj.frames[0], x0)
    torch.testing.assert_close(traj.frames[-1], x1)


def test_integrate_runs_without_autograd() -> None:
    x0 = torch.ones(2, 2, requires_grad=True)
    x1 = integrate(lambda x, t: x * 2, x0, time_grid(3), heun_step)
    assert not x1.requires_grad


def _gaussian_velocity(path: GaussianPath, mu: float, s: float):
    """The exact marginal velocity for data N(mu, s²) under the path."""

    def field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.view(-1, 1)
        a, b, da, db = path.alpha.value(t), path.beta.value(t), path.alpha.dt(t), path.beta.dt(t)
        return da * mu + (a * da * s**2 + b * db) / (a**2 * s**2 + b**2) * (x - a * mu)

    return field


@pytest.mark.parametrize("solver", ["euler", "heun", "sde"])
def test_samplers_reach_the_data_distribution(solver: str) -> None:
    path = GaussianPath.named("linear")
    mu, s = 1.5, 0.5
    x0 = torch.randn(20000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    step = make_step(solver, path, noise=1.0, generator=torch.Generator().manual_seed(1))
    x1 = integrate(_gaussian_velocity(path, mu, s), x0, time_grid(200).double(), step)
    assert float(x1.mean()) == pytest.approx(mu, abs=0.02)
    assert float(x1.std()) == pytest.approx(s, abs=0.02)


def test_sde_adds_noise_and_zero_noise_is_euler() -> None:
    path = GaussianPath.named("linear")
    field = _gaussian_velocity(path, 0.0, 1.0)
    x0 = torch.randn(100, 1, generator=torch.Generator().manual_seed(0))
    euler = integrate(field, x0, time_grid(20), euler_step)
    quiet = integrate(field, x0, time_grid(20), euler_maruyama(path, 0.0))
    noisy = integrate(field, x0, time_grid(20), euler_maruyama(path, 1.0, torch.Generator().manual_seed(2)))
    torch.testing.assert_close(quiet, euler)
    assert (noisy - euler).abs().max() > 0.05


def test_solver_names() -> None:
    assert set(EVALS_PER_STEP) == {"euler", "heun", "midpoint", "sde"}
    with pytest.raises(ValueError, match="unknown solver 'rk4'"):
        make_step("rk4")
    with pytest.raises(ValueError, match="needs the probability path"):
        make_step("sde")
