"""What a user asks of a new run, checked once for every way of asking.

:class:`RunSettings` is a preset plus the values that override it, as typed on the
command line (``cfg-tui train``) or in the app's Train form; :func:`plan_run` turns it
into validated configurations (:class:`RunPlan`) or raises :class:`SettingsError` with
one line naming the setting. Both surfaces call it, so they accept and refuse the same
settings with the same words.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.configs import (
    EMBED_DIM,
    LAYERS,
    PROCESSES,
    TrainConfig,
    UNetConfig,
    channels_problem,
    check_memory,
    training_bytes,
)
from core.presets import PRESETS

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


class SettingsError(ValueError):
    """A setting that cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class RunSettings:
    """A new run as asked for: None means the preset's value."""

    preset: str = "auto"
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    eta: float | None = None
    ema_decay: float | None = None
    grad_clip: float | None = None
    schedule: str | None = None
    time_sampling: str | None = None
    time_mean: float | None = None
    time_std: float | None = None
    warmup_steps: int | None = None
    lr_decay: str | None = None
    lr_floor: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    precision: str | None = None
    channels: tuple[int, ...] | None = None
    layers: int | None = None
    embed_dim: int | None = None
    seed: int = 0
    compile: bool = False
    sync_bn: bool = False
    device: str = "auto"
    processes: int = 1


@dataclass(frozen=True)
class RunPlan:
    """A new run's validated configurations, and where it trains."""

    preset: str
    model: UNetConfig
    train: TrainConfig
    device: torch.device
    processes: int


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else the CPU; ``cuda`` without a GPU is refused."""
    import torch  # here, not above: this module is read by commands that never load torch

    if name not in DEVICES:
        raise SettingsError(f"device must be one of {', '.join(DEVICES)}, not {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device cuda: no CUDA device is available here")
    return torch.device(name)


def check_processes(processes: int, device: torch.device) -> int:
    """Training processes: at least one; on CUDA one per GPU, so no more than there are."""
    from core.distributed import gpu_count

    if processes < 1:
        raise SettingsError(f"nproc must be at least 1, not {processes}")
    if PROCESSES.problem(processes):
        raise SettingsError(f"nproc {PROCESSES.problem(processes)}")
    if processes > 1 and device.type == "cuda" and processes > gpu_count():
        raise SettingsError(
            f"nproc: {processes} is more than the {gpu_count()} GPU(s) here (one process per GPU)"
        )
    return processes


def preset_name(preset: str, device: torch.device) -> str:
    """``auto`` is the lab's recipe on a GPU and the small CPU preset elsewhere."""
    name = preset if preset != "auto" else ("seed" if device.type == "cuda" else "cpu")
    if name not in PRESETS:
        raise SettingsError(f"preset must be auto, {', '.join(PRESETS)}, not {preset!r}")
    return name


def _given(**values: object) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _check_model_settings(s: RunSettings) -> None:
    """The U-Net's overrides in the words of the option and the field (``layers``, not
    ``num_residual_layers``), before a configuration is made of them."""
    problems = {
        "channels": channels_problem(s.channels) if s.channels is not None else None,
        "layers": LAYERS.problem(s.layers) if s.layers is not None else None,
        "embed dim": EMBED_DIM.problem(s.embed_dim) if s.embed_dim is not None else None,
    }
    for name, problem in problems.items():
        if problem:
            raise SettingsError(f"{name} {problem}")


def check_training_memory(model: UNetConfig, batch: int, device: torch.device, processes: int = 1) -> None:
    """Refuse, with the estimate, a batch that would not fit: each process trains its share of the
    batch; on the CPU they share the machine's memory, on CUDA each has a GPU."""
    share = math.ceil(batch / processes)
    needed = training_bytes(model, share) * (processes if device.type == "cpu" else 1)
    try:
        check_memory(f"training batch size {batch} with this model", needed, device.type)
    except ValueError as e:
        raise SettingsError(str(e)) from None


def plan_run(settings: RunSettings) -> RunPlan:
    """The preset with the settings' overrides, every value checked (by range, and the batch by the
    memory it needs); :class:`SettingsError` if not."""
    s = settings
    _check_model_settings(s)
    device = resolve_device(s.device)
    name = preset_name(s.preset, device)
    base = PRESETS[name]
    model_changes = _given(
        channels=s.channels, num_residual_layers=s.layers, t_embed_dim=s.embed_dim, y_embed_dim=s.embed_dim
    )
    train_changes = _given(
        steps=s.steps, batch_size=s.batch_size, lr=s.lr, eta=s.eta, ema_decay=s.ema_decay,
        grad_clip=s.grad_clip, schedule=s.schedule, time_sampling=s.time_sampling, time_mean=s.time_mean,
        time_std=s.time_std, warmup_steps=s.warmup_steps, lr_decay=s.lr_decay, lr_floor=s.lr_floor,
        beta1=s.beta1, beta2=s.beta2, precision=s.precision,
    )  # fmt: skip
    flags = {"seed": s.seed, "compile": s.compile, "sync_bn": s.sync_bn}
    try:
        train = dataclasses.replace(base.train, **train_changes, **flags)
        model = dataclasses.replace(base.model, **model_changes)
    except ValueError as e:
        raise SettingsError(str(e)) from None
    processes = check_processes(s.processes, device)
    check_training_memory(model, train.batch_size, device, processes)
    return RunPlan(name, model, train, device, processes)


def new_run_path(runs_folder: str | os.PathLike, preset: str, name: str | None = None) -> Path:
    """Where a new run goes: ``runs_folder/name`` (a plain, unused folder name), or a fresh
    ``<time>-<preset>`` there (``-2``, ``-3``… added while that exists)."""
    from core.files import check_folder  # here: core.files builds its errors on this module's

    folder = Path(runs_folder)
    check_folder(folder, "runs folder")
    if name is None or not name.strip():
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{preset}"
        name, n = base, 2
        while (folder / name).exists():
            name, n = f"{base}-{n}", n + 1
        return folder / name
    name = name.strip()
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("-"):
        raise SettingsError(f"run name {name!r} must be a plain folder name")
    if (folder / name).exists():
        raise SettingsError(f"run name {name!r} already exists in {folder}")
    return folder / name
