import re

import pytest
import torch

from core.trainer import new_model
from core.unet import MiB, UNet, UNetConfig, model_size_bytes, unet_parameters, unet_size_bytes


def test_default_unet_is_the_labs_size_and_shape() -> None:
    model = UNet()
    assert f"{model_size_bytes(model) / MiB:.3f}" == "4.715"
    x = torch.randn(3, 1, 32, 32)
    out = model(x, torch.rand(3, 1, 1, 1), torch.tensor([0, 9, 10]))
    assert out.shape == (3, 1, 32, 32)


COUNTED = [
    UNetConfig(),  # the lab's: 4.715 MiB
    UNetConfig(channels=(16, 32, 64), num_residual_layers=1, t_embed_dim=32, y_embed_dim=32),  # cpu preset
    UNetConfig(channels=(8, 16, 24, 32), num_residual_layers=3, t_embed_dim=6, y_embed_dim=10, image_size=16),
    UNetConfig(
        channels=(8,), num_residual_layers=0, t_embed_dim=2, y_embed_dim=3, num_classes=2, image_channels=3
    ),
]


@pytest.mark.parametrize("config", COUNTED, ids=lambda c: ",".join(map(str, c.channels)))
def test_the_size_counted_from_the_config_is_the_built_models(config: UNetConfig) -> None:
    """``cfg-tui info`` counts without building the U-Net (so without torch): the same numbers."""
    model = UNet(config)
    assert unet_parameters(config) == sum(p.numel() for p in model.parameters())
    assert unet_size_bytes(config) == model_size_bytes(model)
    if config == UNetConfig():
        assert f"{unet_size_bytes(config) / MiB:.3f}" == "4.715"


def test_time_can_be_flat_or_image_shaped() -> None:
    model = new_model(UNetConfig(channels=(8, 16), num_residual_layers=1), seed=0).eval()
    x, t, y = torch.randn(2, 1, 32, 32), torch.rand(2), torch.tensor([1, 10])
    torch.testing.assert_close(model(x, t, y), model(x, t.view(2, 1, 1, 1), y))


def test_output_depends_on_label_and_time() -> None:
    model = new_model(UNetConfig(channels=(8, 16), num_residual_layers=1), seed=0).eval()
    x = torch.randn(1, 1, 32, 32)
    base = model(x, torch.tensor([0.5]), torch.tensor([3]))
    assert not torch.allclose(base, model(x, torch.tensor([0.5]), torch.tensor([4])))
    assert not torch.allclose(base, model(x, torch.tensor([0.6]), torch.tensor([3])))


def test_configurations_change_the_size() -> None:
    small = model_size_bytes(
        UNet(UNetConfig(channels=(16, 32), num_residual_layers=1, t_embed_dim=16, y_embed_dim=8))
    )
    assert small < model_size_bytes(UNet())
    deeper = UNet(UNetConfig(channels=(8, 16, 32, 64)))
    assert deeper(torch.randn(2, 1, 32, 32), torch.rand(2), torch.tensor([0, 1])).shape == (2, 1, 32, 32)


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = new_model(UNetConfig(), seed=7)
    after = torch.rand(1)
    b = new_model(UNetConfig(), seed=7)
    c = new_model(UNetConfig(), seed=8)
    assert torch.equal(before, after)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"t_embed_dim": 7}, "t_embed_dim must be even"),
        ({"channels": (32, 0)}, "channels must be positive"),
        ({"image_size": 30}, "image_size 30 is not divisible by 2^2"),
        ({"num_classes": 0}, "num_classes out of range"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        UNetConfig(**kwargs)


def test_config_round_trips_through_a_dict() -> None:
    config = UNetConfig(channels=(8, 16), num_residual_layers=3, num_classes=4, image_size=16)
    assert UNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown U-Net config keys: colour"):
        UNetConfig.from_dict({**config.to_dict(), "colour": 1})
