import pytest
import torch

from core.guidance import guided_velocity
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
