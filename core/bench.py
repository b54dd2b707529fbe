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
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
