"""Named starting points for training: a model configuration, a training configuration, and what
they give (the measured figures live here, once)."""

from __future__ import annotations

from dataclasses import dataclass

from core.trainer import TrainConfig
from core.unet import UNetConfig


@dataclass(frozen=True)
class Preset:
    model: UNetConfig
    train: TrainConfig
    description: str


PRESETS = {
    "seed": Preset(UNetConfig(), TrainConfig(), "the lab's recipe: default U-Net, batch 250, 5,000 steps"),
    # Chosen by measurement on 2 CPU cores: this U-Net trains at ~600 images/s there (the lab's
    # at ~90). The one place its measured time is stated is the description below.
    "cpu": Preset(
        UNetConfig(channels=(16, 32, 64), num_residual_layers=1, t_embed_dim=32, y_embed_dim=32),
        TrainConfig(steps=2500, batch_size=128, lr=1e-3),
        "a small U-Net: readable digits after 2,500 steps of 128, 8 min 52 s measured on 2 CPU cores",
    ),
    # The lab's U-Net with the recipe the CPU ablation chose (see the cpu preset), bf16 and CUDA
    # graphs, a batch a GPU is not starved by. Not yet measured on a GPU: `make gpu-check` does.
    "gpu": Preset(
        UNetConfig(),
        TrainConfig(
            steps=5000, batch_size=256, lr=1e-3, warmup_steps=100, lr_decay="cosine", lr_floor=0.1,
            time_sampling="logit-normal", beta2=0.95, ema_decay=0.999, precision="auto", compile=True,
        ),
        "the lab's U-Net with the new recipe, bf16 and CUDA graphs (for one GPU; not yet timed on one)",
    ),
}
