"""Straightforward implementations of the lab's loops, and timing, for side-by-side benchmarks."""

from __future__ import annotations

import ctypes
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
    fns: dict[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 1,
    peaks: PeakMemory | None = None,
) -> dict[str, float]:
    """The median wall time of each ``fn()``, timed round-robin after ``warmup`` unmeasured rounds.

    Taking turns spreads any slowdown of the machine (another process, thermal limits) over
    every variant alike, so the ratios between them hold even when the absolute times drift.
    ``peaks`` measures each call's peak memory during the warm-up rounds only, because
    measuring slows a call down (by a quarter on the CPU, measured).
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            if round_ < warmup:
                peaks.measure(name, fn) if peaks is not None else fn()
                continue
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


class PeakMemory:
    """The peak memory of calls, by name: on CUDA the allocator's peak; on a Linux CPU the rise of
    the process's resident set over the call (its high-water mark, reset before each call through
    ``/proc/self/clear_refs``, after handing freed heap back so that earlier calls do not hide it)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bytes: dict[str, int] = {}
        self._start = 0
        self._libc = _glibc() if device.type == "cpu" else None
        self._rss = self._libc is not None and _reset_peak_rss()

    def measure(self, name: str, fn: Callable[[], object]) -> None:
        """Call ``fn()`` and keep the peak memory it reached under ``name`` (the largest so far)."""
        self._before()
        fn()
        self._after(name)

    def _before(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self._rss:
            self._libc.malloc_trim(0)
            _reset_peak_rss()
            self._start = _resident_kib("VmRSS") * 1024

    def _after(self, name: str) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self._rss:
            peak = _resident_kib("VmHWM") * 1024 - self._start
        else:
            return
        self.bytes[name] = max(self.bytes.get(name, 0), peak)

    def describe(self, name: str) -> str:
        if name not in self.bytes:
            return "n/a"
        what = "" if self.device.type == "cuda" else " more RSS"
        return f"{self.bytes[name] / 2**20:,.0f} MiB{what}"


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident set (Linux); False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _resident_kib("VmHWM") is not None


def _resident_kib(field: str) -> int | None:
    """``VmRSS`` or ``VmHWM`` of /proc/self/status in KiB (None where there is no such file)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


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
