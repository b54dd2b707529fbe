import math

import pytest
import torch

from core.guidance import (
    APG,
    CFG,
    METHODS,
    Auto,
    Calls,
    Guidance,
    Interval,
    ZeroStar,
    guided_velocity,
    parse_guidance,
)
from core.path import GaussianPath
from core.sampling import generate
from core.solvers import EVALS_PER_STEP
from core.trainer import new_model
from core.unet import UNetConfig

NULL = 10


@pytest.fixture
def model() -> torch.nn.Module:
    m = new_model(UNetConfig(channels=(8, 16), num_residual_layers=1), seed=0)
    # Make BatchNorm's running statistics non-trivial, as after training.
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(16, 1, 32, 32), torch.rand(16), torch.randint(0, 11, (16,)))
    return m.eval()


class CallCounter:
    def __init__(self, model: torch.nn.Module) -> None:
        self.batch_sizes: list[int] = []
        model.register_forward_hook(lambda m, args, out: self.batch_sizes.append(args[0].shape[0]))


def _inputs(n: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 32, 32, generator=g), torch.rand(n, generator=g), torch.arange(n) % 10


@torch.no_grad()
def test_w_one_is_conditional_and_w_zero_is_null(model: torch.nn.Module) -> None:
    x, t, y = _inputs()
    torch.testing.assert_close(guided_velocity(model, x, t, y, 1.0, NULL), model(x, t, y))
    torch.testing.assert_close(
        guided_velocity(model, x, t, y, 0.0, NULL), model(x, t, torch.full_like(y, NULL))
    )


@torch.no_grad()
def test_batched_call_equals_the_labs_two_calls(model: torch.nn.Module) -> None:
    x, t, y = _inputs()
    y[2] = NULL  # a null row among conditional ones
    for w in (0.5, 3.0, 10.0):
        lab = (1 - w) * model(x, t, torch.full_like(y, NULL)) + w * model(x, t, y)
        torch.testing.assert_close(guided_velocity(model, x, t, y, w, NULL), lab, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_one_network_call_per_evaluation(model: torch.nn.Module) -> None:
    x, t, y = _inputs(6)
    counter = CallCounter(model)
    guided_velocity(model, x, t, y, 3.0, NULL)
    assert counter.batch_sizes == [12]
    y[:2] = NULL
    guided_velocity(model, x, t, y, 3.0, NULL)
    assert counter.batch_sizes[-1] == 10  # null rows are not duplicated
    guided_velocity(model, x, t, torch.full_like(y, NULL), 3.0, NULL)
    guided_velocity(model, x, t, y, 1.0, NULL)
    guided_velocity(model, x, t, y, 0.0, NULL)
    assert counter.batch_sizes[-3:] == [6, 6, 6]


# --- the methods of core.guidance ----------------------------------------------------------------

SMALL = UNetConfig(channels=(8, 16), num_residual_layers=1, image_size=8)
TOL = {"atol": 1e-5, "rtol": 1e-5}


def _warmed(config: UNetConfig, seed: int) -> torch.nn.Module:
    """A tiny model in eval mode with non-trivial BatchNorm statistics."""
    m = new_model(config, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    m.train()
    size = config.image_size
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(16, 1, size, size, generator=g)
            m(x, torch.rand(16, generator=g), torch.randint(0, 11, (16,), generator=g))
    return m.eval()


@pytest.fixture
def small() -> torch.nn.Module:
    return _warmed(SMALL, seed=0)


def _at(n: int, t: float, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (n, 1, 8, 8), a common time t (n,) as the solvers give it, labels 0..9."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.full((n,), t), torch.arange(n) % 10


def _batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (n, 1, 8, 8) at a common time t = 0.6, labels 0..9."""
    return _at(n, 0.6, seed=2)


def _cfg_by_hand(model: torch.nn.Module, x, t, y, w: float) -> torch.Tensor:
    u_null = model(x, t, torch.full_like(y, NULL))
    return u_null + w * (model(x, t, y) - u_null)


def _per_sample_norm(a: torch.Tensor) -> torch.Tensor:
    return a.flatten(1).norm(dim=1)


def _per_sample_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(1)


def _method(name: str) -> Guidance:
    """Each method with parameters under which it guides at every t (auto by a weaker model)."""
    return {
        "cfg": CFG(),
        "interval": Interval(start=0.0, end=1.0),
        "zero-star": ZeroStar(zero_steps=0),
        "apg": APG(eta=0.5, rescale=5.0, momentum=-0.5),
        "auto": Auto(guide=_warmed(SMALL, seed=7)),
    }[name]


@torch.no_grad()
@pytest.mark.parametrize("t", [0.0, 0.37, 1.0])
def test_interval_over_all_of_0_1_is_cfg(small: torch.nn.Module, t: float) -> None:
    x, tt, y = _at(4, t)
    for w in (0.0, 0.5, 3.0, 7.5):
        interval = Interval(start=0.0, end=1.0).field(small, y, w, NULL)(x, tt)
        torch.testing.assert_close(interval, CFG().field(small, y, w, NULL)(x, tt))
        torch.testing.assert_close(interval, _cfg_by_hand(small, x, tt, y, w), **TOL)


@torch.no_grad()
def test_interval_is_conditional_outside_with_one_row_per_sample(small: torch.nn.Module) -> None:
    method = Interval(start=0.4, end=0.7)
    counter = CallCounter(small)
    for t in (0.0, 0.2, 0.399, 0.701, 0.9, 1.0):
        x, tt, y = _at(4, t)
        calls = Calls(batch=4)
        out = method.field(small, y, 3.0, NULL, counter=calls)(x, tt)
        assert calls.rows == 4 and calls.nfe == 1.0
        assert counter.batch_sizes[-1] == 4
        torch.testing.assert_close(out, small(x, tt, y))
    for t in (0.4, 0.55, 0.7):  # the ends are inside
        x, tt, y = _at(4, t)
        calls = Calls(batch=4)
        out = method.field(small, y, 3.0, NULL, counter=calls)(x, tt)
        assert calls.rows == 8 and calls.nfe == 2.0
        torch.testing.assert_close(out, _cfg_by_hand(small, x, tt, y, 3.0), **TOL)
        assert not torch.allclose(out, small(x, tt, y), atol=1e-3)


@torch.no_grad()
def test_apg_with_eta_one_and_nothing_else_is_cfg(small: torch.nn.Module) -> None:
    x, t, y = _batch(5)
    for w in (0.0, 0.5, 2.0, 6.0):
        apg = APG(eta=1.0, rescale=math.inf, momentum=0.0).field(small, y, w, NULL)(x, t)
        torch.testing.assert_close(apg, CFG().field(small, y, w, NULL)(x, t), **TOL)


@torch.no_grad()
def test_apg_guidance_is_orthogonal_to_the_predicted_image(small: torch.nn.Module) -> None:
    path = GaussianPath.named("linear")
    for t_now in (0.1, 0.5, 0.9):
        x, t, y = _at(5, t_now)
        w = 4.0
        apg = APG(eta=0.0).field(small, y, w, NULL, path)(x, t)
        assert not torch.allclose(apg, _cfg_by_hand(small, x, t, y, w), atol=1e-3)
        u_cond = small(x, t, y)
        image = path.data_from_velocity(u_cond, x, t.view(-1, 1, 1, 1))
        term = apg - u_cond
        assert (_per_sample_norm(term) > 1e-3).all()  # there is a guidance term to be orthogonal
        cosine = _per_sample_dot(term, image) / (_per_sample_norm(term) * _per_sample_norm(image))
        assert cosine.abs().max() < 1e-4
        # and it is CFG's term less its component along the image
        delta = u_cond - small(x, t, torch.full_like(y, NULL))
        along = (_per_sample_dot(delta, image) / _per_sample_dot(image, image)).view(-1, 1, 1, 1) * image
        torch.testing.assert_close(term, (w - 1) * (delta - along), atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_apg_rescale_bounds_the_guidance_norm(small: torch.nn.Module) -> None:
    x, t, y = _batch(6)
    w = 5.0
    u_cond = small(x, t, y)
    delta = u_cond - small(x, t, torch.full_like(y, NULL))
    norms = _per_sample_norm(delta)
    r = float(norms.median())  # binds for some samples, not for others
    assert (norms > r * 1.01).any() and (norms < r * 0.99).any()
    apg = APG(eta=1.0, rescale=r, momentum=0.0).field(small, y, w, NULL)(x, t)
    guidance = (apg - u_cond) / (w - 1)
    assert (_per_sample_norm(guidance) <= r * (1 + 1e-5)).all()
    torch.testing.assert_close(_per_sample_norm(guidance), norms.clamp(max=r), **TOL)
    free = norms <= r  # untouched where the norm is within the bound
    torch.testing.assert_close(guidance[free], delta[free], **TOL)


@torch.no_grad()
def test_apg_momentum_is_a_running_sum_carried_in_the_field(small: torch.nn.Module) -> None:
    beta, w = -0.5, 3.0
    _, _, y = _batch(4)
    points = [_at(4, t_now, seed=s)[:2] for s, t_now in ((1, 0.2), (2, 0.5), (3, 0.8))]
    with_momentum = APG(eta=1.0, momentum=beta).field(small, y, w, NULL)
    without = APG(eta=1.0).field(small, y, w, NULL)
    out = [with_momentum(x, t) for x, t in points]
    plain = [without(x, t) for x, t in points]
    torch.testing.assert_close(out[0], plain[0])  # nothing carried yet
    assert not torch.allclose(out[1], plain[1], atol=1e-3)
    running = torch.zeros(())
    for (x, t), got in zip(points, out, strict=True):
        u_cond = small(x, t, y)
        running = u_cond - small(x, t, torch.full_like(y, NULL)) + beta * running
        torch.testing.assert_close(got, u_cond + (w - 1) * running, **TOL)
    # a new field starts afresh
    x, t = points[0]
    torch.testing.assert_close(APG(eta=1.0, momentum=beta).field(small, y, w, NULL)(x, t), plain[0])


@torch.no_grad()
def test_auto_guided_by_the_model_itself_is_the_conditional_field(small: torch.nn.Module) -> None:
    x, t, y = _batch(4)
    u = small(x, t, y)
    counter = CallCounter(small)
    for w in (0.0, 0.5, 3.0, 9.0):
        calls = Calls(batch=4)
        out = Auto(guide=small).field(small, y, w, NULL, counter=calls)(x, t)
        torch.testing.assert_close(out, u, **TOL)
        assert calls.rows == 8 and counter.batch_sizes[-2:] == [4, 4]
    assert len(counter.batch_sizes) == 8


@torch.no_grad()
def test_auto_with_a_weaker_guide(small: torch.nn.Module) -> None:
    guide = _warmed(SMALL, seed=3)
    guide_counter, model_counter = CallCounter(guide), CallCounter(small)
    x, t, y = _batch(4)
    y[1] = NULL
    for w in (0.0, 2.0, 5.0):
        calls = Calls(batch=4)
        out = Auto(guide=guide).field(small, y, w, NULL, counter=calls)(x, t)
        u_guide, u = guide(x, t, y), small(x, t, y)
        assert not torch.allclose(u_guide, u, atol=1e-3)
        torch.testing.assert_close(out, u_guide + w * (u - u_guide), **TOL)
        assert calls.rows == 8 and calls.nfe == 2.0  # one row per sample in each network
    assert guide_counter.batch_sizes == [4, 4] * 3 and model_counter.batch_sizes == [4, 4] * 3


class _IgnoresLabel(torch.nn.Module):
    """u(x | y) = u(x | ∅): the model called with every label replaced by ∅."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x, t, torch.full_like(y, NULL))


@torch.no_grad()
def test_zero_star_with_equal_fields_is_that_field(small: torch.nn.Module) -> None:
    same = _IgnoresLabel(small)
    x, t, y = _batch(4)
    for w in (0.0, 0.5, 3.0, 9.0):
        out = ZeroStar().field(same, y, w, NULL)(x, t)
        torch.testing.assert_close(out, same(x, t, y), **TOL)


@torch.no_grad()
def test_zero_star_scales_the_null_field_by_s_star(small: torch.nn.Module) -> None:
    x, t, y = _batch(5)
    y[3] = NULL
    u_cond, u_null = small(x, t, y), small(x, t, torch.full_like(y, NULL))
    s = (_per_sample_dot(u_cond, u_null) / _per_sample_dot(u_null, u_null)).view(-1, 1, 1, 1)
    assert not torch.allclose(s, torch.ones_like(s), atol=1e-3)
    for w in (0.0, 2.0, 5.0):
        out = ZeroStar().field(small, y, w, NULL)(x, t)
        torch.testing.assert_close(out, s * u_null + w * (u_cond - s * u_null), **TOL)
        torch.testing.assert_close(out[3], u_null[3], **TOL)  # a ∅ row: s* = 1, the null field


@torch.no_grad()
@pytest.mark.parametrize("name", ["cfg", "interval", "zero-star", "apg", "auto"])
def test_every_method_at_w_one_is_conditional_with_one_row(small: torch.nn.Module, name: str) -> None:
    method = _method(name)
    x, t, y = _batch(4)
    counter = CallCounter(small)
    calls = Calls(batch=4)
    out = method.field(small, y, 1.0, NULL, counter=calls)(x, t)
    torch.testing.assert_close(out, small(x, t, y))
    assert calls.rows == 4 and counter.batch_sizes[0] == 4
    # and at w = 3 it guides, with two rows per sample
    calls = Calls(batch=4)
    out = method.field(small, y, 3.0, NULL, counter=calls)(x, t)
    assert calls.rows == 8
    assert not torch.allclose(out, small(x, t, y), atol=1e-3)


# --- network rows over a whole generate run ------------------------------------------------------

N = 10  # Euler on the uniform grid evaluates at t = 0, 0.1, …, 0.9


def _rows(model: torch.nn.Module, guide: Guidance, w: float = 3.0, solver: str = "euler", labels=None) -> int:
    """Network rows of one generate run of N steps, checked against forward hooks on every network."""
    labels = torch.arange(3) if labels is None else labels
    counters = [CallCounter(model)] + ([CallCounter(guide.guide)] if isinstance(guide, Auto) else [])
    calls = Calls()
    generate(model, labels, w, steps=N, solver=solver, guide=guide, calls=calls)
    assert calls.batch == len(labels)
    assert calls.rows == sum(sum(c.batch_sizes) for c in counters)
    return calls.rows


@pytest.mark.parametrize(
    ("guide", "w", "per_sample"),
    [
        (CFG(), 3.0, 2 * N),
        (CFG(), 0.5, 2 * N),
        (CFG(), 1.0, N),
        (CFG(), 0.0, N),
        (Interval(start=0.0, end=1.0), 3.0, 2 * N),
        (Interval(start=0.25, end=0.65), 3.0, N + 4),  # 0.3, 0.4, 0.5, 0.6
        (Interval(start=0.3, end=0.6), 3.0, N + 4),  # the same four, on the ends
        (Interval(start=0.35, end=0.45), 3.0, N + 1),
        (Interval(start=0.95, end=1.0), 3.0, N),  # t = 1 is never evaluated
        (Interval(start=0.0, end=0.05), 3.0, N + 1),
        (Interval(start=0.0, end=1.0), 1.0, N),
        (ZeroStar(zero_steps=0), 3.0, 2 * N),
        (ZeroStar(zero_steps=1), 3.0, 2 * (N - 1)),
        (ZeroStar(zero_steps=4), 3.0, 2 * (N - 4)),
        (ZeroStar(zero_steps=N), 3.0, 0),
        (ZeroStar(zero_steps=N + 5), 3.0, 0),
        (ZeroStar(zero_steps=4), 1.0, N - 4),
        (APG(), 3.0, 2 * N),
        (APG(eta=0.5, rescale=2.0, momentum=-0.5), 3.0, 2 * N),
        (None, 3.0, 2 * N),  # auto, with a guide model
    ],
)
def test_rows_of_a_generate_run(
    small: torch.nn.Module, guide: Guidance | None, w: float, per_sample: int
) -> None:
    guide = guide or Auto(guide=_warmed(SMALL, seed=5))
    assert _rows(small, guide, w) == 3 * per_sample
    if not isinstance(guide, Interval):  # the midpoint's half-step times fall elsewhere in an interval
        assert _rows(small, guide, w, solver="midpoint") == 2 * 3 * per_sample


def test_interval_rows_with_the_midpoint_solver(small: torch.nn.Module) -> None:
    # evaluations at t = i/N (0.4, 0.5 inside) and (i + 1/2)/N (0.35, 0.45, 0.55 inside)
    assert _rows(small, Interval(start=0.32, end=0.58), solver="midpoint") == 3 * (2 * N + 5)


@pytest.mark.parametrize("solver", ["euler", "heun", "midpoint", "sde"])
def test_rows_per_solver(small: torch.nn.Module, solver: str) -> None:
    evals = EVALS_PER_STEP[solver]
    assert _rows(small, CFG(), solver=solver) == 3 * 2 * evals * N
    assert _rows(small, ZeroStar(zero_steps=3), solver=solver) == 3 * 2 * evals * (N - 3)
    assert _rows(small, CFG(), 1.0, solver=solver) == 3 * evals * N


def test_null_rows_are_not_duplicated_in_a_run(small: torch.nn.Module) -> None:
    labels = torch.tensor([0, NULL, 4, NULL, 9])  # three conditional rows, two ∅
    assert _rows(small, CFG(), labels=labels) == N * (5 + 3)
    assert _rows(small, ZeroStar(zero_steps=2), labels=labels) == (N - 2) * (5 + 3)
    assert _rows(small, APG(), labels=labels) == N * (5 + 3)
    assert _rows(small, CFG(), labels=torch.full((4,), NULL)) == N * 4


# --- parse_guidance ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(METHODS))
def test_each_name_parses_to_its_default(name: str) -> None:
    method = parse_guidance(name)
    assert type(method) is METHODS[name] and method.name == name
    assert method == METHODS[name]()
    assert method.describe() == name


def test_parameters_parse() -> None:
    assert parse_guidance("interval:start=0.3,end=0.9") == Interval(start=0.3, end=0.9)
    apg = parse_guidance("apg:eta=0.5,rescale=10,momentum=-0.5")
    assert apg == APG(eta=0.5, rescale=10.0, momentum=-0.5)
    assert isinstance(apg.rescale, float)
    for spec in ("zero-star:zero_steps=2", "zero-star:zero-steps=2", " zero-star: zero_steps = 2 "):
        method = parse_guidance(spec)
        assert method == ZeroStar(zero_steps=2) and method.zero_steps == 2
        assert isinstance(method.zero_steps, int)
    assert parse_guidance("interval:end=0.5").start == Interval().start
    assert parse_guidance("apg:rescale=inf") == APG()
    assert parse_guidance("auto:checkpoint=run/step-000100.safetensors").checkpoint == (
        "run/step-000100.safetensors"
    )
    assert parse_guidance("cfg:") == CFG()


@pytest.mark.parametrize(
    "method",
    [
        CFG(),
        Interval(),
        Interval(start=0.3, end=0.9),
        Interval(start=0.0, end=1.0),
        ZeroStar(),
        ZeroStar(zero_steps=0),
        ZeroStar(zero_steps=5),
        APG(),
        APG(eta=0.5, rescale=10.0, momentum=-0.5),
        APG(eta=1.0, rescale=0.25),
        APG(eta=-0.2, momentum=0.75),
        Auto(),
        Auto(checkpoint="run/checkpoints/step-000100.safetensors"),
    ],
)
def test_describe_round_trips(method: Guidance) -> None:
    text = method.describe()
    assert parse_guidance(text) == method
    assert parse_guidance(text).describe() == text
    assert text.startswith(method.name)


def test_describe_names_only_what_differs_from_the_defaults() -> None:
    assert Interval(start=0.3).describe() == "interval:start=0.3"
    assert ZeroStar(zero_steps=0).describe() == "zero-star:zero_steps=0"
    assert APG(rescale=10.0).describe() == "apg:rescale=10"
    assert Auto(guide=torch.nn.Linear(1, 1)).describe() == "auto"  # the guide model is no parameter


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("nope", "unknown guidance 'nope'"),
        ("", "unknown guidance"),
        ("CFG", "unknown guidance"),
        ("interval:width=0.3", "width"),
        ("cfg:scale=2", "scale"),
        ("apg:eta", "eta"),  # no '='
        ("interval:start=0.3,end", "end"),
        ("interval:start=abc", "must be a number, not 'abc'"),
        ("apg:rescale=", "must be a number"),
        ("zero-star:zero_steps=two", "must be an integer"),
        ("zero-star:zero_steps=1.5", "must be an integer"),
        ("interval:start=nan", "nan"),
        ("apg:eta=nan", "nan"),
        ("apg:momentum=nan", "nan"),
        ("interval:start=0.9,end=0.3", "start < end"),
        ("interval:start=0.5,end=0.5", "start < end"),
        ("interval:start=-0.1", "start=-0.1"),
        ("interval:end=1.5", "end=1.5"),
        ("apg:rescale=0", "rescale"),
        ("apg:rescale=-3", "rescale"),
        ("apg:momentum=1", "momentum"),
        ("apg:momentum=-1", "momentum"),
        ("apg:momentum=2", "momentum"),
        ("apg:eta=inf", "eta"),
        ("zero-star:zero_steps=-1", "zero_steps"),
    ],
)
def test_bad_specs_are_one_line_value_errors(spec: str, problem: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_guidance(spec)
    message = str(error.value)
    assert problem in message
    assert "\n" not in message and message.strip() == message and message
