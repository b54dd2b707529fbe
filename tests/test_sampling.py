import pytest
import torch

from core.grids import shifted_grid, uniform_grid
from core.guidance import APG, CFG, Calls, Interval, ZeroStar
from core.sampling import SAMPLERS, Sampler, generate, sample
from core.solvers import Trajectory
from core.trainer import new_model
from core.unet import UNetConfig

SMALL = UNetConfig(channels=(8, 16), num_residual_layers=1, image_size=8)
NULL = SMALL.null_label


@pytest.fixture
def model() -> torch.nn.Module:
    """A tiny 8×8 model in eval mode with non-trivial BatchNorm statistics."""
    m = new_model(SMALL, seed=0)
    g = torch.Generator().manual_seed(100)
    m.train()
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(16, 1, 8, 8, generator=g)
            m(x, torch.rand(16, generator=g), torch.randint(0, 11, (16,), generator=g))
    return m.eval()


LABELS = torch.tensor([0, 3, 7, NULL])


def _noise(seed: int = 0) -> torch.Tensor:
    """generate's x_0 for LABELS: drawn on the CPU from the seed."""
    return torch.randn(len(LABELS), 1, 8, 8, generator=torch.Generator().manual_seed(seed))


# --- zero-init -----------------------------------------------------------------------------------


@pytest.mark.parametrize("z", [1, 3])
def test_zero_init_keeps_the_noise_over_the_first_steps(model: torch.nn.Module, z: int) -> None:
    steps, batch = 8, len(LABELS)
    labels = torch.tensor([0, 3, 7, 9])
    trajectory = Trajectory(steps)
    calls = Calls()
    out = generate(
        model, labels, 3.0, steps=steps, guide=ZeroStar(zero_steps=z), callback=trajectory, calls=calls
    )
    frames, x0 = trajectory.frames, _noise()
    assert frames.shape == (steps + 1, batch, 1, 8, 8)
    torch.testing.assert_close(trajectory.times, uniform_grid(steps))
    for i in range(z + 1):  # x at grid points 0 … z is still x_0
        torch.testing.assert_close(frames[i], x0, rtol=0, atol=0)
    assert not torch.allclose(frames[z + 1], x0, atol=1e-4)
    torch.testing.assert_close(frames[-1], out)
    assert calls.rows == 2 * (steps - z) * batch


@pytest.mark.parametrize("z", [1, 3])
def test_zero_init_is_the_solve_from_noise_at_t_z(model: torch.nn.Module, z: int) -> None:
    steps = 8
    skipped = generate(model, LABELS, 3.0, steps=steps, guide=ZeroStar(zero_steps=z))
    later = generate(model, LABELS, 3.0, guide=ZeroStar(zero_steps=0), grid=uniform_grid(steps)[z:])
    torch.testing.assert_close(skipped, later)
    assert not torch.allclose(
        skipped, generate(model, LABELS, 3.0, steps=steps, guide=ZeroStar(zero_steps=0))
    )


def test_zero_init_over_every_step_returns_the_noise(model: torch.nn.Module) -> None:
    calls = Calls()
    trajectory = Trajectory(4)
    out = generate(
        model, LABELS, 3.0, steps=4, guide=ZeroStar(zero_steps=6), calls=calls, callback=trajectory
    )
    torch.testing.assert_close(out, _noise(), rtol=0, atol=0)
    assert calls.rows == 0
    assert len(trajectory.frames) == 5  # every grid point still reported


# --- grids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("guide", [CFG(), Interval(), ZeroStar(zero_steps=2), APG(momentum=-0.5)])
def test_an_explicit_uniform_grid_is_the_default(model: torch.nn.Module, guide) -> None:
    steps = 6
    default = generate(model, LABELS, 3.0, steps=steps, guide=guide, seed=4)
    explicit = generate(model, LABELS, 3.0, steps=steps, guide=guide, seed=4, grid=uniform_grid(steps))
    torch.testing.assert_close(explicit, default, rtol=0, atol=0)
    # the grid replaces steps
    torch.testing.assert_close(
        generate(model, LABELS, 3.0, steps=50, guide=guide, seed=4, grid=uniform_grid(6)), default
    )
    shifted = generate(model, LABELS, 3.0, steps=steps, guide=guide, seed=4, grid=shifted_grid(steps, 3.0))
    assert (shifted - default).abs().max() > 1e-3


def test_same_seed_same_images_and_the_model_mode_is_restored(model: torch.nn.Module) -> None:
    a = generate(model, LABELS, 2.0, steps=5, seed=9)
    model.train()
    b = generate(model, LABELS, 2.0, steps=5, seed=9)
    assert model.training
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, generate(model.eval(), LABELS, 2.0, steps=5, seed=10), atol=1e-3)


# --- Sampler -------------------------------------------------------------------------------------


def test_the_lab_sampler() -> None:
    lab = SAMPLERS["lab"]
    assert lab == Sampler()
    assert (lab.solver, lab.steps, lab.grid, lab.guide) == ("euler", 99, "uniform", CFG())
    assert lab.evaluations() == 99
    assert lab.describe() == "euler × 99, uniform grid, cfg"


@pytest.mark.parametrize(
    "changes, words",
    [({"noise": float("nan")}, "noise must be a finite number"), ({"noise": -1.0}, "noise must be 0 or more"),
     ({"noise": 1e9}, "noise must be at most 100"), ({"steps": 0}, "steps must be at least 1"),
     ({"shift": float("inf")}, "shift must be a number above 0"), ({"solver": "rk4"}, "unknown solver")],
)  # fmt: skip
def test_a_sampler_refuses_what_it_cannot_run(changes: dict, words: str) -> None:
    """Checked where a Sampler is made, whoever makes it (the CLI and the forms check first, in words
    naming their option; a library user gets these)."""
    with pytest.raises(ValueError, match=words):
        Sampler(**{"solver": "sde", **changes})


def test_evaluations_leave_out_the_skipped_steps() -> None:
    assert Sampler(steps=10, guide=ZeroStar(zero_steps=3)).evaluations() == 7
    assert Sampler(steps=10, guide=ZeroStar()).evaluations() == 9  # zero-star skips one by default
    assert Sampler(solver="midpoint", steps=10, guide=ZeroStar(zero_steps=3)).evaluations() == 14
    assert Sampler(steps=2, guide=ZeroStar(zero_steps=5)).evaluations() == 0
    assert Sampler(steps=10, guide=ZeroStar(zero_steps=0)).evaluations() == 10
    assert Sampler(solver="heun", steps=5, guide=Interval()).evaluations() == 10
    assert SAMPLERS["fast"].evaluations() == 12


@pytest.mark.parametrize(
    "sampler",
    [
        Sampler(steps=5),
        Sampler(solver="midpoint", steps=3),
        Sampler(solver="heun", steps=4, guide=ZeroStar(zero_steps=2)),
        Sampler(steps=6, guide=ZeroStar(zero_steps=6)),
        Sampler(solver="sde", steps=4, guide=APG()),
    ],
)
def test_evaluations_are_what_a_run_spends(model: torch.nn.Module, sampler: Sampler) -> None:
    calls = Calls()
    labels = torch.tensor([1, 2, 3])
    sample(model, labels, 3.0, sampler, uniform_grid(sampler.steps), calls=calls)
    assert calls.nfe == 2 * sampler.evaluations()  # two rows per evaluation when guiding


@pytest.mark.parametrize(
    "settings",
    [
        {"solver": "rk4"},
        {"solver": ""},
        {"steps": 0},
        {"steps": -3},
        {"grid": "cosine"},
        {"grid": "fitted", "guide": ZeroStar()},
        {"grid": "fitted", "guide": ZeroStar(zero_steps=2)},
    ],
)
def test_sampler_refuses_bad_settings(settings: dict) -> None:
    with pytest.raises(ValueError) as error:
        Sampler(**settings)
    assert "\n" not in str(error.value)


def test_sampler_accepts_good_settings() -> None:
    for grid in ("uniform", "shifted", "fitted"):
        assert Sampler(grid=grid).grid == grid
    assert Sampler(grid="fitted", guide=ZeroStar(zero_steps=0)).guide.zero_steps == 0
    assert Sampler(grid="shifted", guide=ZeroStar(zero_steps=2)).evaluations() == 97
    for solver in ("euler", "heun", "midpoint", "sde"):
        assert Sampler(solver=solver, steps=1).solver == solver
