"""Straightforward implementations of the lab's loops, and timing, for side-by-side benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import Tensor
from torchvision import transforms

from core.data.sources import Dataset


class LabSampler:
    """The lab's ``MNISTSampler``: a torchvision dataset with the PIL transform, read item by item."""

    def __init__(self, dataset: Dataset, root: Path, train: bool = True) -> None:
        pipeline = transforms.Compose(
            [transforms.Resize((32, 32)), transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]
        )
        cls = getattr(torchvision.datasets, dataset.folder)
        self.dataset = cls(str(root), train=train, download=False, transform=pipeline)

    def items(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        samples, labels = zip(*(self.dataset[int(i)] for i in indices), strict=True)
        return torch.stack(samples), torch.tensor(labels, dtype=torch.int64)

    def sample(self, n: int) -> tuple[Tensor, Tensor]:
        return self.items(torch.randperm(len(self.dataset))[:n])


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """The median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` unmeasured ones."""
    return interleaved_medians({"fn": fn}, repeats, warmup)["fn"]


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """The median wall time of each ``fn()``, timed round-robin after ``warmup`` unmeasured rounds.

    Taking turns spreads any slowdown of the machine (another process, thermal limits) over
    every variant alike, so the ratios between them hold even when the absolute times drift.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


NULL = 10


def lab_conditional_field(z: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """The lab's u_t(x | z) = (α̇ − β̇/β · α) z + (β̇/β) x with α = t, β = 1 − t; shapes like ``z``."""
    return (1 + t / (1 - t)) * z - x / (1 - t)


def lab_train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, sampler: LabSampler, batch_size: int, eta: float
) -> float:
    """One step of the lab's ``CFGTrainer``: PIL batch, label drop, its path math, MSE, Adam."""
    device = next(model.parameters()).device
    z, y = sampler.sample(batch_size)
    z, y = z.to(device), y.to(device)
    y[torch.rand(batch_size, device=device) < eta] = NULL
    t = torch.rand(batch_size, 1, 1, 1, device=device)
    x = t * z + (1 - t) * torch.randn_like(z)
    loss = (model(x, t, y) - lab_conditional_field(z, x, t)).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def lab_sample(model: torch.nn.Module, labels: Tensor, w: float, num_timesteps: int = 100) -> Tensor:
    """The lab's sampler: Euler on linspace(0, 1, 100), two network calls per step (y and ∅)."""
    device = next(model.parameters()).device
    y = labels.to(device)
    x = torch.randn(len(y), 1, 32, 32, device=device)
    ts = torch.linspace(0, 1, num_timesteps, device=device)
    for i in range(num_timesteps - 1):
        t = ts[i].expand(len(y), 1, 1, 1)
        guided = model(x, t, y)
        unguided = model(x, t, torch.full_like(y, NULL))
        x = x + ((1 - w) * unguided + w * guided) * (ts[i + 1] - ts[i])
    return x


def training_flops(model: torch.nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> int:
    """Floating-point operations of one forward + backward pass (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(*batch).pow(2).mean().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def forward_flops(model: torch.nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> int:
    """Floating-point operations of one forward pass without autograd."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(*batch)
    return counter.get_total_flops()
