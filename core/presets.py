"""Named starting points for training: a model configuration, a training configuration, and what
they give (the measured figures live here, once)."""

from __future__ import annotations

from dataclasses import dataclass

from core.configs import TrainConfig, UNetConfig


@dataclass(frozen=True)
class Preset:
    model: UNetConfig
    train: TrainConfig
    description: str


PRESETS = {
    "seed": Preset(UNetConfig(), TrainConfig(), "the lab's recipe: default U-Net, batch 250, 5,000 steps"),
    # The small U-Net (~700 images/s in fp32 on 2 CPU cores, ~1,000 in bf16; the lab's ~90) with the
    # lab's recipe, in bf16 where the CPU has it: 3,500 steps in the old preset's time (2,500 fp32
    # steps). What else issue 14's ablation (`cfg-tui bench recipe`) tried did not pay in a run this
    # short: lr decay and EMA cost quality, and logit-normal t with Adam beta2 0.95, ahead at a third of
    # the time, ended behind. The one place its measured time is stated is the description below.
    "cpu": Preset(
        UNetConfig(channels=(16, 32, 64), num_residual_layers=1, t_embed_dim=32, y_embed_dim=32),
        TrainConfig(steps=3500, batch_size=128, lr=1e-3, precision="auto"),
        "a small U-Net: readable digits after 3,500 steps of 128, 8 min 14 s measured on 2 CPU cores "
        "with bf16 (AVX512-BF16); without native bf16 about 1.4x that",
    ),
    # The lab's recipe with the speed-ups a GPU has: bf16 and CUDA graphs (the CPU ablation found no
    # other trick that pays in a run this short). Not yet measured on a GPU: `make gpu-check` does.
    "gpu": Preset(
        UNetConfig(),
        TrainConfig(precision="auto", compile=True),
        "the lab's recipe with bf16 and CUDA graphs (for one GPU; not yet timed on one)",
    ),
}
