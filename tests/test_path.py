import pytest
import torch

from core.path import GaussianPath

SCHEDULES = ["linear", "cosine"]


@pytest.mark.parametrize("name", SCHEDULES)
def test_endpoints_are_noise_and_data(name: str) -> None:
    path = GaussianPath.named(name)
    z = torch.randn(4, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    x0, eps0 = path.sample(z, torch.zeros(4, 1, 1, 1), g)
    x1, _ = path.sample(z, torch.ones(4, 1, 1, 1), g)
    torch.testing.assert_close(x0, eps0, atol=1e-6, rtol=0)
    torch.testing.assert_close(x1, z, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_derivatives_match_autograd(name: str) -> None:
    path = GaussianPath.named(name)
    t = torch.linspace(0, 1, 11, dtype=torch.float64, requires_grad=True)
    for schedule in (path.alpha, path.beta):
        (grad,) = torch.autograd.grad(schedule.value(t).sum(), t)
        torch.testing.assert_close(schedule.dt(t.detach()), grad)


@pytest.mark.parametrize("name", SCHEDULES)
def test_vector_field_is_time_derivative_of_path(name: str) -> None:
    path = GaussianPath.named(name)
    z = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    eps = torch.randn_like(z)
    t = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64).view(5, 1, 1, 1).requires_grad_()
    x_t = path.alpha.value(t) * z + path.beta.value(t) * eps
    (dx_dt,) = torch.autograd.grad(x_t.sum(), t, retain_graph=True)
    # The sum over pixels of d x_t / dt, compared per sample.
    velocity = path.velocity(z, eps, t.detach())
    torch.testing.assert_close(velocity.sum(dim=(1, 2, 3)), dx_dt.view(5))
    # The x-form agrees wherever β_t > 0, per pixel (check against finite differences too).
    inner = slice(0, 4)
    td = t.detach()
    field = path.conditional_vector_field(x_t.detach()[inner], z[inner], td[inner])
    torch.testing.assert_close(field, velocity[inner])
    h = 1e-6
    fd = (path.alpha.value(td + h) * z + path.beta.value(td + h) * eps - x_t.detach()) / h
    torch.testing.assert_close(velocity[inner], fd[inner], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", SCHEDULES)
def test_vector_field_stays_finite_at_t_equal_one(name: str) -> None:
    path = GaussianPath.named(name)
    z = torch.randn(3, 1, 4, 4)
    eps = torch.randn_like(z)
    t = torch.ones(3, 1, 1, 1)
    x, _ = path.sample(z, t)
    assert torch.isfinite(path.velocity(z, eps, t)).all()
    assert torch.isfinite(path.conditional_vector_field(x, z, t)).all()
    # Close to t = 1 the x-form still equals the exact noise form.
    t = torch.full((3, 1, 1, 1), 1 - 1e-3)
    x = path.alpha.value(t) * z + path.beta.value(t) * eps
    torch.testing.assert_close(
        path.conditional_vector_field(x, z, t), path.velocity(z, eps, t), atol=2e-3, rtol=0
    )


@pytest.mark.parametrize("name", SCHEDULES)
def test_conditional_score_matches_torch_distributions(name: str) -> None:
    path = GaussianPath.named(name)
    z = torch.randn(4, 1, 4, 4, dtype=torch.float64)
    t = torch.tensor([0.0, 0.3, 0.6, 0.95], dtype=torch.float64).view(4, 1, 1, 1)
    x = torch.randn_like(z).requires_grad_()
    normal = torch.distributions.Normal(path.alpha.value(t) * z, path.beta.value(t))
    (score,) = torch.autograd.grad(normal.log_prob(x).sum(), x)
    torch.testing.assert_close(path.conditional_score(x.detach(), z, t), score)


@pytest.mark.parametrize("name", SCHEDULES)
def test_score_from_velocity_inverts_the_gaussian_identity(name: str) -> None:
    # Data N(μ, s²): p_t = N(α μ, α² s² + β²) and its velocity field are known in closed form.
    path = GaussianPath.named(name)
    mu, s = 0.7, 0.4
    t = torch.tensor([0.0, 0.2, 0.5, 0.8], dtype=torch.float64).view(4, 1)
    a, b, da, db = path.alpha.value(t), path.beta.value(t), path.alpha.dt(t), path.beta.dt(t)
    x = torch.randn(4, 6, dtype=torch.float64)
    var = a**2 * s**2 + b**2
    u = da * mu + (a * da * s**2 + b * db) / var * (x - a * mu)
    torch.testing.assert_close(path.score_from_velocity(u, x, t), -(x - a * mu) / var)


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'cubic'"):
        GaussianPath.named("cubic")
