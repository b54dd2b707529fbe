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
GiB = 1024**3


# --- bounds: what every command and form accepts, in one place (issue 18) ---------------------------
# A value past these is a typo or an attack, never a run anyone wants: refused in one line before any
# work, where it would otherwise overflow int64 in torch, allocate without end, or build for hours.


@dataclass(frozen=True)
class Bound:
    """The values a setting may take, ``low`` to ``high`` inclusive (NaN is never inside)."""

    low: float
    high: float

    def problem(self, value: float) -> str | None:
        """What is wrong with ``value`` (``must be at least 1, not 0``), or None when it is inside."""
        if isinstance(value, bool) or not isinstance(value, int | float):  # e.g. a string in a file
            return f"must be a number, not {value!r}"
        if self.low <= value <= self.high:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number from {self.low:g} to {self.high:g}, not {value}"
        low = "0 or more" if self.low == 0 else f"at least {self.low:g}"
        side = low if value < self.low else f"at most {self.high:,}"
        return f"must be {side}, not {value}"

    def check(self, name: str, value: float) -> float:
        """``value``, or a one-line ValueError naming ``name``."""
        problem = self.problem(value)
        if problem:
            raise ValueError(f"{name} {problem}")
        return value


SEEDS = Bound(0, 2**63 - 1)
"""torch seeds its generators with 64-bit integers; negative seeds are refused rather than wrapped."""
TRAIN_STEPS = Bound(1, 100_000_000)
"""Optimizer steps (the lab's run is 5,000)."""
BATCH = Bound(1, 60_000)
"""Images per step: no dataset here has more training images (MNIST's 60,000); memory bounds it too."""
STAGES = Bound(1, 6)
"""U-Net stages: six halve a 32-pixel image down to 1 pixel."""
CHANNELS = Bound(1, 1024)
LAYERS = Bound(0, 16)
"""Residual layers per stage (0: the convolutions between stages only)."""
EMBED_DIM = Bound(1, 4096)
CLASSES = Bound(1, 1000)
IMAGE_CHANNELS = Bound(1, 4)
IMAGE_SIZE = Bound(1, 512)
STEP = Bound(0, TRAIN_STEPS.high)
"""A step of a run (the one a snapshot was taken at)."""
INTERVAL = Bound(0, TRAIN_STEPS.high)
"""Steps between checkpoints, previews, logs or evaluations (0: only at the end, where allowed)."""
PROCESSES = Bound(1, 1024)
SOLVER_STEPS = Bound(1, 1000)
"""Solver steps of a sampler (the lab's Euler takes 99)."""
PER_CLASS = Bound(1, 10_000)
"""Samples per class (row) in one command; memory bounds the batch further."""
MEASURED_PER_CLASS = Bound(2, PER_CLASS.high)
"""Samples per class where a spread is measured (``eval``, ``sweep``): two at least."""
GUIDANCE = Bound(-100, 100)
"""Guidance scales w (the lab's is 3; past 20 the images are saturated)."""
NOISE = Bound(0, 100)
"""The sde solver's noise level (1: the reverse SDE's)."""
GRID_SHIFT = Bound(1e-3, 1000)
"""The shifted grid's shift s (SD3's is 3)."""
PANELS = Bound(1, 100)
"""Panels of one figure or rows of one table: guidance scales, times of ``cfg-tui path``."""
PANEL_SIDE = Bound(1, 100)
"""Rows or columns of images in a panel of ``cfg-tui path``."""
REPEATS = Bound(1, 1000)
"""Timed repeats of a benchmark."""
THREADS = Bound(1, 1024)
EPOCHS = Bound(1, 1000)
SECONDS = Bound(1e-3, 1e7)
"""A time budget in seconds (at most about four months)."""


def channels_problem(channels: tuple[int, ...]) -> str | None:
    """What is wrong with a U-Net's widths per stage (``must be positive, got [32, 0]``), or None."""
    if STAGES.problem(len(channels)):
        return f"must list {STAGES.low:g} to {STAGES.high:g} stages, not {len(channels)}"
    if min(channels) < CHANNELS.low:
        return f"must be positive, got {list(channels)}"
    if max(channels) > CHANNELS.high:
        return f"must each be at most {CHANNELS.high:,}, not {max(channels):,}"
    return None


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
        problems = self._bound_problems()
        if not problems:  # the rules below assume sizes inside the bounds
            if self.t_embed_dim % 2:
                problems.append(f"t_embed_dim must be even, got {self.t_embed_dim}")
            if self.image_size % 2 ** (len(self.channels) - 1):
                stages = len(self.channels) - 1
                problems.append(f"image_size {self.image_size} is not divisible by 2^{stages}")
        if problems:
            raise ValueError("; ".join(problems))

    def _bound_problems(self) -> list[str]:
        """Each size out of its :class:`Bound` (checked before anything is counted or built: a
        config.json or checkpoint asking for 10^9 layers must not hang or exhaust memory)."""
        problems = []
        if channels_problem(self.channels):
            problems.append(f"channels {channels_problem(self.channels)}")
        for name, bound in (("num_residual_layers", LAYERS), ("t_embed_dim", EMBED_DIM),
                            ("y_embed_dim", EMBED_DIM), ("num_classes", CLASSES),
                            ("image_channels", IMAGE_CHANNELS), ("image_size", IMAGE_SIZE)):  # fmt: skip
            problem = bound.problem(getattr(self, name))
            if problem:
                problems.append(f"{name} out of range: {problem}")
        if not problems and self.t_embed_dim < 2:
            problems.append(f"t_embed_dim must be even and >= 2, got {self.t_embed_dim}")
        return problems

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


# --- memory: a model's size × batch, estimated before anything is allocated ------------------------


def activation_floats(config: UNetConfig) -> tuple[int, int]:
    """Floats per image of ``UNet(config)``'s feature maps: those a training step keeps for the backward
    pass, and the most alive at once in a forward pass without gradients (sampling).

    Counted as maps of each stage's width and resolution: a residual layer keeps about 8 (two
    SiLU, BatchNorm and convolution outputs, and the sums), the convolution between stages and the
    upsampling about 3; encoders and decoders run at every width but the last, the midcoder at it.
    Without gradients only the skips and a few working maps of the widest stage are alive."""
    c, n = config.channels, config.num_residual_layers
    maps = [width * (config.image_size >> k) ** 2 for k, width in enumerate(c)]
    stage = [(8 * n + 3) * m for m in maps]
    training = 3 * maps[0] + 2 * sum(stage[:-1]) + stage[-1]
    sampling = sum(maps[1:]) + 5 * max(maps)
    return training, sampling


def training_bytes(config: UNetConfig, batch: int) -> int:
    """Memory a training step at ``batch`` takes: float32 feature maps for the backward pass, and the
    weights with their gradients and Adam's two moments."""
    return 4 * batch * activation_floats(config)[0] + 4 * unet_size_bytes(config)


def sampling_bytes(config: UNetConfig, images: int, guided: bool = True) -> int:
    """Memory sampling ``images`` at once takes: the network's peak (guidance evaluates a conditional
    and an unconditional row per image) and the solver's float32 copies of the images (the state,
    its velocities, the noise and the result: about 6)."""
    per_image = (2 if guided else 1) * activation_floats(config)[1]
    per_image += 6 * config.image_channels * config.image_size**2
    return 4 * images * per_image + unet_size_bytes(config)


def available_memory(device_type: str = "cpu") -> int:
    """Bytes there are for new work: the host's available memory, or on CUDA the biggest GPU's whole
    memory (read through NVML: asking CUDA would make a context in this process, which the app must
    not hold; what other processes take of a GPU is theirs to give back)."""
    if device_type == "cuda":
        return _gpu_memory()
    import psutil

    return psutil.virtual_memory().available


def _gpu_memory() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handles = map(pynvml.nvmlDeviceGetHandleByIndex, range(pynvml.nvmlDeviceGetCount()))
            return max(int(pynvml.nvmlDeviceGetMemoryInfo(h).total) for h in handles)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML (or no driver through it): ask torch, loaded already on a GPU run
        import torch

        return torch.cuda.get_device_properties(0).total_memory


def check_memory(what: str, needed: int, device_type: str = "cpu") -> None:
    """A one-line ValueError when ``needed`` bytes are more than ``device_type`` has free: refused up
    front, with the estimate, rather than failing (or swapping) part-way through."""
    free = available_memory(device_type)
    if needed > free:
        where = "the GPU has" if device_type == "cuda" else "this machine has"
        free_text = f"{free / GiB:.1f} GiB" + ("" if device_type == "cuda" else " free")
        raise ValueError(f"{what} needs about {needed / GiB:,.1f} GiB of memory; {where} {free_text}")


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
        bounded = (("steps", self.steps, TRAIN_STEPS), ("batch size", self.batch_size, BATCH),
                   ("seed", self.seed, SEEDS), ("warm-up steps", self.warmup_steps, INTERVAL))  # fmt: skip
        for name, value, bound in bounded:
            bound.check(name, value)
        checks = (  # (name, value, whether it is good, the rule)
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
