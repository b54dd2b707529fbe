"""The U-Net's and the training's settings: plain dataclasses, importable without torch.

A run's ``config.json`` is these two (:mod:`core.run_files`), and ``cfg-tui runs``, ``info`` and
``--help`` read them; kept apart from the network and the trainer so that those commands start
without loading torch (2-3 s). :mod:`core.unet` and :mod:`core.trainer` export them too.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

from core.schedules import SCHEDULES

MiB = 1024**2


@dataclass(frozen=True)
class UNetConfig:
    """Every architectural choice; the defaults are the lab's ``MNISTUNet``."""

    channels: tuple[int, ...] = (32, 64, 128)
    num_residual_layers: int = 2
    t_embed_dim: int = 40
    y_embed_dim: int = 40
    num_classes: int = 10  # the null label ∅ is index ``num_classes``
    image_channels: int = 1
    image_size: int = 32  # square images; divisible by 2^(len(channels) − 1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        problems = []
        if len(self.channels) < 1 or min(self.channels) < 1:
            problems.append(f"channels must be positive, got {list(self.channels)}")
        if self.t_embed_dim < 2 or self.t_embed_dim % 2:
            problems.append(f"t_embed_dim must be even and >= 2, got {self.t_embed_dim}")
        if self.image_size < 1 or self.image_size % 2 ** (len(self.channels) - 1):
            problems.append(f"image_size {self.image_size} is not divisible by 2^{len(self.channels) - 1}")
        for name in ("num_residual_layers", "y_embed_dim", "num_classes", "image_channels"):
            if getattr(self, name) < (0 if name == "num_residual_layers" else 1):
                problems.append(f"{name} out of range: {getattr(self, name)}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def null_label(self) -> int:
        return self.num_classes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown U-Net config keys: {', '.join(unknown)}")
        return cls(**d)


# --- the U-Net's size, counted from its configuration (core.unet builds the same layers) ----------


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _conv3(c_in: int, c_out: int) -> int:
    return 9 * c_in * c_out + c_out


def _residual_layer(c: int, t_dim: int, y_dim: int) -> int:
    """Two (BatchNorm, 3×3 conv) blocks and the two embedding adapters (Linear, SiLU, Linear)."""
    blocks = 2 * (2 * c + _conv3(c, c))
    return blocks + _linear(t_dim, t_dim) + _linear(t_dim, c) + _linear(y_dim, y_dim) + _linear(y_dim, c)


def unet_parameters(config: UNetConfig) -> int:
    """The parameters of ``UNet(config)``, counted without building it (``info`` starts without torch)."""
    c, n, t_dim, y_dim = config.channels, config.num_residual_layers, config.t_embed_dim, config.y_embed_dim
    pairs = list(itertools.pairwise(c))

    def stage(width: int) -> int:
        return n * _residual_layer(width, t_dim, y_dim)

    count = _conv3(config.image_channels, c[0]) + 2 * c[0]  # init conv + BatchNorm
    count += t_dim // 2 + (config.num_classes + 1) * y_dim  # Fourier weights, label embedding (with ∅)
    count += sum(stage(a) + _conv3(a, b) for a, b in pairs)  # encoders: layers, stride-2 conv
    count += stage(c[-1])  # midcoder
    count += sum(stage(a) + _conv3(b, a) for a, b in pairs)  # decoders: upsample conv, layers
    return count + _conv3(c[0], config.image_channels)  # final conv


def unet_size_bytes(config: UNetConfig) -> int:
    """Bytes of ``UNet(config)``'s float32 parameters and buffers (``model_size_bytes`` of the built
    model): each BatchNorm also keeps a running mean and variance (float32) and a batch count (int64)."""
    c, n = config.channels, config.num_residual_layers
    stages = [*c[:-1], c[-1], *c[:-1]]  # encoders, midcoder, decoders
    norms = [c[0]] + [width for width in stages for _ in range(2 * n)]  # init conv's, 2 a layer
    return 4 * (unet_parameters(config) + 2 * sum(norms)) + 8 * len(norms)


TIME_SAMPLINGS = ("uniform", "logit-normal")
LR_DECAYS = ("constant", "cosine", "linear")
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass
class TrainConfig:
    """Every training setting; the defaults are the lab's recipe."""

    steps: int = 5000
    batch_size: int = 250
    lr: float = 1e-3
    eta: float = 0.1  # probability of dropping a label to ∅
    schedule: str = "linear"
    seed: int = 0
    ema_decay: float = 0.0  # 0 = no EMA of the weights
    grad_clip: float = 0.0  # 0 = no clipping of the gradient norm
    # How t is drawn: uniform on [0, 1] (the lab's) or logit-normal, t = sigmoid(m + s·n) with
    # n ~ N(0, 1) (SD3's choice): more training where the velocity is hardest to predict.
    time_sampling: str = "uniform"
    time_mean: float = 0.0  # m of the logit-normal
    time_std: float = 1.0  # s of the logit-normal
    warmup_steps: int = 0  # the lr rises linearly over these first steps
    lr_decay: str = "constant"  # after the warm-up: constant, or cosine / linear down to lr_floor
    lr_floor: float = 0.0  # the lr at the last step, as a fraction of lr
    beta1: float = 0.9  # Adam's betas (the lab's are PyTorch's defaults)
    beta2: float = 0.999
    # Autocast of the network to bf16 (fp32 weights, loss and optimizer), or fp32; auto = bf16
    # where the device computes it natively (CUDA, AVX512-BF16, AMX: 1.5-3x faster, measured).
    precision: str = "fp32"
    compile: bool = False  # torch.compile the model's forward (CUDA graphs on CUDA)
    # NHWC activations, same math: 1.2-1.4x faster convolutions on 2 CPU cores (measured).
    channels_last: bool = True
    sync_bn: bool = False  # with several processes: BatchNorm statistics of the global batch

    def __post_init__(self) -> None:
        """The one check of training settings; the first bad one is named in one line."""
        checks = (  # (name, value, whether it is good, the rule)
            ("steps", self.steps, self.steps >= 1, "must be at least 1"),
            ("batch size", self.batch_size, self.batch_size >= 1, "must be at least 1"),
            ("lr", self.lr, 0 < self.lr < math.inf, "must be a finite number above 0"),
            ("eta", self.eta, 0 <= self.eta < 1, "(the probability of a null label) must be in [0, 1)"),
            ("EMA decay", self.ema_decay, 0 <= self.ema_decay < 1, "must be in [0, 1) (0 = off)"),
            ("gradient clip", self.grad_clip, 0 <= self.grad_clip < math.inf,
             "must be a finite number, 0 or more (0 = off)"),
            ("schedule", self.schedule, self.schedule in SCHEDULES, f"must be one of {', '.join(SCHEDULES)}"),
            ("time sampling", self.time_sampling, self.time_sampling in TIME_SAMPLINGS,
             f"must be one of {', '.join(TIME_SAMPLINGS)}"),
            ("time mean", self.time_mean, math.isfinite(self.time_mean), "must be a finite number"),
            ("time std", self.time_std, 0 < self.time_std < math.inf, "must be a finite number above 0"),
            ("warm-up steps", self.warmup_steps, self.warmup_steps >= 0, "must be 0 or more"),
            ("lr decay", self.lr_decay, self.lr_decay in LR_DECAYS, f"must be one of {', '.join(LR_DECAYS)}"),
            ("lr floor", self.lr_floor, 0 <= self.lr_floor <= 1, "(a fraction of the lr) must be in [0, 1]"),
            ("beta1", self.beta1, 0 <= self.beta1 < 1, "must be in [0, 1)"),
            ("beta2", self.beta2, 0 <= self.beta2 < 1, "must be in [0, 1)"),
            ("precision", self.precision, self.precision in PRECISIONS,
             f"must be one of {', '.join(PRECISIONS)}"),
        )  # fmt: skip
        for name, value, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name} {rule}, not {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """From ``to_dict``'s output; keys added since an older file default to the lab's values."""
        d = dict(d)
        if "bf16" in d:  # before precision: a bool
            d["precision"] = "bf16" if d.pop("bf16") else "fp32"
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**d)


EVENTS_PER_RUN = 10
"""Checkpoints and previews a run makes when their intervals are not given."""


def auto_every(steps: int, log_every: int) -> int:
    """Steps between checkpoints (or previews) for a run of ``steps``: about
    :data:`EVENTS_PER_RUN` of them, each on a logged step (a multiple of ``log_every``)."""
    return max(log_every, round(steps / EVENTS_PER_RUN / log_every) * log_every)
