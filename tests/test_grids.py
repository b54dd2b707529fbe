import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from core.grids import (
    GRIDS,
    check_grid,
    fit_grid,
    grid_error,
    grid_from_logits,
    grid_key,
    grid_store_path,
    load_grids,
    save_grid,
    shifted_grid,
    solve,
    uniform_grid,
)
from core.solvers import euler_step, integrate, time_grid

# dx/dt = A·K·t^(K−1)·g(x): the change is packed near t = 1, where a uniform grid is coarse.
A, K = 0.5, 6


def growth(x: Tensor, t: Tensor) -> Tensor:
    """g(x) = x: x(1) = x0·e^A."""
    return A * K * t[:, None] ** (K - 1) * x


def growth_exact(x0: Tensor) -> Tensor:
    return x0 * math.exp(A)


SIN_A = 2.0


def pendulum(x: Tensor, t: Tensor) -> Tensor:
    """g(x) = sin x, nonlinear: tan(x(1)/2) = tan(x0/2)·e^SIN_A for |x0| < π."""
    return SIN_A * K * t[:, None] ** (K - 1) * torch.sin(x)


def pendulum_exact(x0: Tensor) -> Tensor:
    return 2 * torch.atan(torch.tan(x0 / 2) * math.exp(SIN_A))


def _batch(n: int, seed: int) -> Tensor:
    """(n, 2) float64 in (−3, 3), inside the pendulum's closed form's range."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1) * 3


# --- names and closed-form grids -----------------------------------------------------------------


def test_check_grid_names_the_choices() -> None:
    assert [check_grid(name) for name in GRIDS] == list(GRIDS)
    with pytest.raises(ValueError, match="uniform, shifted, fitted") as err:
        check_grid("cosine")
    assert "\n" not in str(err.value)


def test_uniform_grid_is_the_labs_linspace() -> None:
    assert torch.equal(uniform_grid(5), torch.linspace(0, 1, 6))


@pytest.mark.parametrize("shift", [0.25, 1.0, 3.0, 7.5])
def test_shifted_grid_runs_exactly_from_0_to_1_increasing(shift: float) -> None:
    grid = shifted_grid(8, shift)
    assert grid.dtype == torch.float32 and grid.shape == (9,)
    assert grid[0].item() == 0.0 and grid[-1].item() == 1.0
    assert bool((grid.diff() > 0).all())


def test_shift_1_is_exactly_uniform() -> None:
    assert torch.equal(shifted_grid(7, 1.0), uniform_grid(7))


def test_shift_follows_sd3s_formula_in_noise_level() -> None:
    # t = 0.5 → σ = 0.5 → σ' = 3·0.5 / (1 + 2·0.5) = 0.75 → t' = 0.25
    grid = shifted_grid(4, 3.0)
    assert grid[2].item() == pytest.approx(0.25)
    sigma = 1 - uniform_grid(4).double()
    expected = 1 - 3 * sigma / (1 + 2 * sigma)
    torch.testing.assert_close(grid.double(), expected, atol=1e-7, rtol=0)


def test_shift_above_1_crowds_the_noise_end() -> None:
    uniform, shifted = uniform_grid(10), shifted_grid(10, 3.0)
    assert int((shifted < 0.5).sum()) > int((uniform < 0.5).sum())
    assert shifted.diff()[0] < uniform.diff()[0]


@pytest.mark.parametrize("shift", [0.0, -1.0, math.nan, math.inf])
def test_bad_shift_is_refused(shift: float) -> None:
    with pytest.raises(ValueError, match="shift must be a number above 0"):
        shifted_grid(4, shift)


# --- fitted grids --------------------------------------------------------------------------------


def test_logits_give_an_increasing_grid_from_0_to_1(tmp_path: Path) -> None:
    grid = grid_from_logits(torch.tensor([5.0, -40.0, 0.3, 2.0]))  # e^-40 would vanish in float32
    assert grid[0].item() == 0.0 and grid[-1].item() == 1.0
    assert bool((grid.diff() > 5e-6).all())
    save_grid(tmp_path / "g.json", "euler:4:cfg:w1", grid)  # still increasing after rounding
    assert torch.allclose(grid_from_logits(torch.zeros(4)), uniform_grid(4))


def test_solve_on_the_uniform_grid_is_integrate() -> None:
    x0 = _batch(4, seed=1)
    torch.testing.assert_close(
        solve(pendulum, x0, time_grid(9), "euler"), integrate(pendulum, x0, time_grid(9).double())
    )


def test_fitted_grid_beats_uniform_and_shifted_at_the_same_steps() -> None:
    x0 = _batch(16, seed=0)
    target = growth_exact(x0)
    lines: list[str] = []
    fitted = fit_grid(growth, x0, target, "euler", 4, log=lines.append)

    assert fitted.dtype == torch.float32 and fitted.device.type == "cpu" and fitted.shape == (5,)
    assert not fitted.requires_grad
    assert fitted[0].item() == 0.0 and fitted[-1].item() == 1.0
    assert bool((fitted.diff() > 0).all())
    assert int(fitted.diff().argmin()) == 3  # the finest step where the field changes fastest

    uniform = grid_error(growth, x0, target, uniform_grid(4), "euler")
    shifted = grid_error(growth, x0, target, shifted_grid(4), "euler")
    error = grid_error(growth, x0, target, fitted, "euler")
    assert error < 0.5 * uniform
    assert error < shifted
    assert len(lines) == 5 and lines[0].startswith("grid fit 0/200")  # iterations 0, 50, …, 200


@pytest.mark.parametrize("solver", ["euler", "midpoint"])
def test_a_grid_fitted_on_one_batch_beats_uniform_on_another(solver: str) -> None:
    calibration, held_out = _batch(16, seed=2), _batch(256, seed=3)
    fitted = fit_grid(pendulum, calibration, pendulum_exact(calibration), solver, 4)
    target = pendulum_exact(held_out)
    uniform = grid_error(pendulum, held_out, target, uniform_grid(4), solver)
    assert grid_error(pendulum, held_out, target, fitted, solver) < 0.5 * uniform


class _Field(nn.Module):
    """The growth field with a trainable scale, as a network's parameters would be."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones((), dtype=torch.float64))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.scale * growth(x, t)


def test_fit_works_from_inference_mode_and_leaves_the_fields_parameters_alone() -> None:
    field = _Field()
    x0 = _batch(8, seed=4)
    with torch.inference_mode():
        # as the callers do: the target is a 99-step Euler solve's end point
        target = integrate(field, x0, time_grid(99).double(), euler_step)
        fitted = fit_grid(field, x0, target, "euler", 3, iterations=20)
    assert field.scale.grad is None
    assert grid_error(field, x0, target, fitted, "euler") < grid_error(
        field, x0, target, uniform_grid(3), "euler"
    )


def test_fit_never_returns_worse_than_uniform() -> None:
    x0 = _batch(8, seed=5)
    target = growth_exact(x0)
    fitted = fit_grid(growth, x0, target, "euler", 4, iterations=3, lr=50.0)  # wild steps
    assert grid_error(growth, x0, target, fitted, "euler") <= grid_error(
        growth, x0, target, uniform_grid(4), "euler"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"solver": "sde"}, "ODE solver"),
        ({"solver": "rk4"}, "unknown solver"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"iterations": -1}, "iterations"),
        ({"lr": 0.0}, "learning rate"),
        ({"target": torch.zeros(3, 2)}, "differ in shape"),
    ],
)
def test_fit_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    x0 = _batch(4, seed=6)
    args = {"f": growth, "x0": x0, "target": growth_exact(x0), "solver": "euler", "steps": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        fit_grid(**args)


# --- storage -------------------------------------------------------------------------------------


def test_store_sits_next_to_the_checkpoint() -> None:
    assert grid_store_path(Path("runs/a/model.safetensors")) == Path("runs/a/model.grids.json")


def test_keys() -> None:
    assert grid_key("midpoint", 3, "cfg", 3.0) == "midpoint:3:cfg:w3"
    assert grid_key("euler", 10, "cfg", 1.5) == "euler:10:cfg:w1.5"


def test_missing_file_is_no_grids(tmp_path: Path) -> None:
    assert load_grids(tmp_path / "model.grids.json") == {}


def test_round_trip_keeps_other_keys_and_rounds(tmp_path: Path) -> None:
    path = tmp_path / "model.grids.json"
    save_grid(path, "euler:2:cfg:w3", torch.tensor([0.0, 0.123456789, 1.0]))
    save_grid(path, "midpoint:3:cfg:w1.5", [0.0, 0.5, 0.75, 1.0])
    save_grid(path, "euler:2:cfg:w3", [0.0, 0.25, 1.0])  # replaces only its own key
    assert load_grids(path) == {
        "euler:2:cfg:w3": [0.0, 0.25, 1.0],
        "midpoint:3:cfg:w1.5": [0.0, 0.5, 0.75, 1.0],
    }
    save_grid(path, "heun:2:cfg:w0", torch.tensor([0.0, 0.123456789, 1.0]))
    assert load_grids(path)["heun:2:cfg:w0"] == [0.0, 0.123457, 1.0]
    assert [p.name for p in tmp_path.iterdir()] == ["model.grids.json"]  # no temporary left


def test_a_fitted_grid_stores_and_loads(tmp_path: Path) -> None:
    x0 = _batch(4, seed=7)
    fitted = fit_grid(growth, x0, growth_exact(x0), "euler", 4, iterations=10)
    path = tmp_path / "m.grids.json"
    save_grid(path, grid_key("euler", 4, "cfg", 3.0), fitted)
    stored = load_grids(path)["euler:4:cfg:w3"]
    torch.testing.assert_close(torch.tensor(stored), fitted, atol=1e-6, rtol=0)


MALFORMED = {
    "not json": "{not json",
    "not an object": "[0, 1]",
    "not a list": '{"euler:2:cfg:w3": "0 0.5 1"}',
    "a string in the list": '{"euler:2:cfg:w3": [0, "0.5", 1]}',
    "a bool in the list": '{"euler:2:cfg:w3": [0, true, 1]}',
    "not finite": '{"euler:2:cfg:w3": [0, NaN, 1]}',
    "infinite": '{"euler:2:cfg:w3": [0, Infinity, 1]}',
    "not from 0": '{"euler:2:cfg:w3": [0.1, 0.5, 1]}',
    "not to 1": '{"euler:2:cfg:w3": [0, 0.5, 0.99]}',
    "not increasing": '{"euler:2:cfg:w3": [0, 0.7, 0.6, 1]}',
    "a repeated point": '{"euler:3:cfg:w3": [0, 0.5, 0.5, 1]}',
    "wrong length": '{"euler:3:cfg:w3": [0, 0.5, 1]}',
    "bad key": '{"euler:x:cfg:w3": [0, 0.5, 1]}',
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_file_is_one_line_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "model.grids.json"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_grids(path)
    assert "model.grids.json" in str(err.value)
    assert "\n" not in str(err.value)


def test_not_strictly_increasing_is_named(tmp_path: Path) -> None:
    path = tmp_path / "model.grids.json"
    path.write_text(json.dumps({"euler:3:cfg:w3": [0, 0.5, 0.5, 1]}))
    with pytest.raises(ValueError, match="not strictly increasing"):
        load_grids(path)


def test_undecodable_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "model.grids.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=r"model\.grids\.json: cannot be read \(not UTF-8 text\)"):
        load_grids(path)


def test_save_refuses_a_bad_grid_and_a_malformed_file_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "model.grids.json"
    with pytest.raises(ValueError, match="not strictly increasing"):
        save_grid(path, "euler:2:cfg:w3", [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="points, not 3"):
        save_grid(path, "euler:2:cfg:w3", [0.0, 1.0])
    assert not path.exists()
    path.write_text("{broken")
    with pytest.raises(ValueError, match="not JSON"):
        save_grid(path, "euler:2:cfg:w3", [0.0, 0.5, 1.0])
    assert path.read_text() == "{broken"
