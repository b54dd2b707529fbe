"""Labelled image sets held as whole tensors, so a batch is one indexing operation."""

from __future__ import annotations

import torch
from torch import Tensor


class ImageBatches:
    """Images ``(N, C, H, W)`` in [-1, 1] and int64 labels ``(N,)``, resident on one device.

    :meth:`sample` draws a batch without replacement, as the lab's sampler does
    (``randperm(N)[:n]``), but by indexing the stored tensors instead of decoding N PIL images.
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise ValueError(
                "expected images (N, C, H, W) and labels (N,), "
                f"got {tuple(images.shape)} and {tuple(labels.shape)}"
            )
        self.images = images.float()
        self.labels = labels.long().to(images.device)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> ImageBatches:
        return ImageBatches(self.images.to(device), self.labels.to(device))

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A batch ``(z (n, C, H, W), y (n,))`` of distinct items."""
        if not 1 <= n <= len(self):
            raise ValueError(f"batch size must be between 1 and the dataset size {len(self)}, got {n}")
        index = torch.randperm(len(self), generator=generator, device=self.device)[:n]
        return self.images[index], self.labels[index]
