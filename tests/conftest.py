"""Small made-up data and models: no network, no GPU, no dataset."""

from __future__ import annotations

import pytest
import torch

from core.data import ImageBatches
from core.unet import UNetConfig

TINY = UNetConfig(
    channels=(8, 16), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8, num_classes=2, image_size=16
)


def bars(n: int, size: int = 16, seed: int = 0) -> ImageBatches:
    """Two classes of ``size``² images in [-1, 1]: 0 = a horizontal bar, 1 = a vertical bar, anywhere."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    pos = torch.randint(4, size - 4, (n,), generator=g)
    images = -torch.ones(n, 1, size, size)
    for i in range(n):
        p = int(pos[i])
        if labels[i] == 0:
            images[i, 0, p - 1 : p + 1, 2:-2] = 1
        else:
            images[i, 0, 2:-2, p - 1 : p + 1] = 1
    return ImageBatches(images, labels)


@pytest.fixture
def tiny_config() -> UNetConfig:
    return TINY
