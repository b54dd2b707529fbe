"""The lab's U-Net u^θ_t(x | y): a conditional vector field on ``(B, C, 32, 32)`` images.

Read top to bottom: time and label embeddings, a residual layer that mixes them into
the feature maps, encoder / midcoder / decoder stages, and the network that stacks them.
Skip connections are *added* to the decoder input, not concatenated (as in the lab).
"""

from __future__ import annotations

import itertools
import math

import torch
from einops import rearrange
from torch import Tensor, nn

from core.configs import MiB as MiB
from core.configs import UNetConfig
from core.configs import unet_parameters as unet_parameters
from core.configs import unet_size_bytes as unet_size_bytes


class FourierEncoder(nn.Module):
    """Learnable Fourier features t ↦ √2 · [sin(2π t w), cos(2π t w)], w ~ N(0, 1) of size dim/2.

    t: ``(B,)`` or ``(B, 1, 1, 1)`` → ``(B, dim)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.randn(1, dim // 2))

    def forward(self, t: Tensor) -> Tensor:
        freqs = t.reshape(-1, 1) * self.weights * (2 * math.pi)
        return torch.cat([freqs.sin(), freqs.cos()], dim=-1) * math.sqrt(2)


def _adapter(embed_dim: int, channels: int) -> nn.Sequential:
    """Linear → SiLU → Linear: an embedding ``(B, embed_dim)`` to a bias ``(B, channels)``."""
    return nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, channels))


def _conv_block(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.SiLU(), nn.BatchNorm2d(channels), nn.Conv2d(channels, channels, 3, padding=1))


class ResidualLayer(nn.Module):
    """x + block2(block1(x) + bias_t + bias_y), at constant shape ``(B, c, H, W)``."""

    def __init__(self, channels: int, t_embed_dim: int, y_embed_dim: int) -> None:
        super().__init__()
        self.block1 = _conv_block(channels)
        self.block2 = _conv_block(channels)
        self.time_adapter = _adapter(t_embed_dim, channels)
        self.y_adapter = _adapter(y_embed_dim, channels)

    def forward(self, x: Tensor, t_embed: Tensor, y_embed: Tensor) -> Tensor:
        h = self.block1(x)
        bias = self.time_adapter(t_embed) + self.y_adapter(y_embed)  # (B, c)
        h = h + rearrange(bias, "b c -> b c 1 1")
        return x + self.block2(h)


class Stage(nn.Module):
    """Residual layers at one width, each conditioned on the same embeddings."""

    def __init__(self, channels: int, num_layers: int, t_embed_dim: int, y_embed_dim: int) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(
            ResidualLayer(channels, t_embed_dim, y_embed_dim) for _ in range(num_layers)
        )

    def forward(self, x: Tensor, t_embed: Tensor, y_embed: Tensor) -> Tensor:
        for block in self.res_blocks:
            x = block(x, t_embed, y_embed)
        return x


class Encoder(Stage):
    """Residual layers at c_in, then a stride-2 conv: ``(B, c_in, H, W)`` → ``(B, c_out, H/2, W/2)``."""

    def __init__(self, c_in: int, c_out: int, num_layers: int, t_dim: int, y_dim: int) -> None:
        super().__init__(c_in, num_layers, t_dim, y_dim)
        self.downsample = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)

    def forward(self, x: Tensor, t_embed: Tensor, y_embed: Tensor) -> Tensor:
        return self.downsample(super().forward(x, t_embed, y_embed))


class Decoder(Stage):
    """Bilinear ×2 and a conv to c_out, then residual layers: ``(B, c_in, H, W)`` → ``(B, c_out, 2H, 2W)``."""

    def __init__(self, c_in: int, c_out: int, num_layers: int, t_dim: int, y_dim: int) -> None:
        super().__init__(c_out, num_layers, t_dim, y_dim)
        self.upsample = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(c_in, c_out, 3, padding=1)
        )

    def forward(self, x: Tensor, t_embed: Tensor, y_embed: Tensor) -> Tensor:
        return super().forward(self.upsample(x), t_embed, y_embed)


class UNet(nn.Module):
    """u^θ_t(x | y): x ``(B, C, H, W)``, t ``(B,)`` or ``(B, 1, 1, 1)``, y ``(B,)`` int64 → ``(B, C, H, W)``.

    H and W must be divisible by 2^(len(channels) − 1); labels are 0..num_classes−1
    and ``num_classes`` for ∅.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or UNetConfig()
        c, n, t_dim, y_dim = cfg.channels, cfg.num_residual_layers, cfg.t_embed_dim, cfg.y_embed_dim
        self.init_conv = nn.Sequential(
            nn.Conv2d(cfg.image_channels, c[0], 3, padding=1), nn.BatchNorm2d(c[0]), nn.SiLU()
        )
        self.time_embedder = FourierEncoder(t_dim)
        self.y_embedder = nn.Embedding(cfg.num_classes + 1, y_dim)
        pairs = list(itertools.pairwise(c))
        self.encoders = nn.ModuleList(Encoder(a, b, n, t_dim, y_dim) for a, b in pairs)
        self.midcoder = Stage(c[-1], n, t_dim, y_dim)
        self.decoders = nn.ModuleList(Decoder(b, a, n, t_dim, y_dim) for a, b in reversed(pairs))
        self.final_conv = nn.Conv2d(c[0], cfg.image_channels, 3, padding=1)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        t_embed = self.time_embedder(t)  # (B, t_dim)
        y_embed = self.y_embedder(y)  # (B, y_dim)
        x = self.init_conv(x)  # (B, c0, H, W)
        skips = []
        for encoder in self.encoders:
            x = encoder(x, t_embed, y_embed)
            skips.append(x)
        x = self.midcoder(x, t_embed, y_embed)
        for decoder in self.decoders:
            x = decoder(x + skips.pop(), t_embed, y_embed)
        return self.final_conv(x)


def model_size_bytes(model: nn.Module) -> int:
    """Bytes taken by the parameters and buffers (the lab's ``model_size_b``)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(p.nelement() * p.element_size() for p in tensors)
