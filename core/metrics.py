"""Sample quality in numbers: a small MNIST classifier and what it says about a set of images.

- accuracy: the share of samples the classifier assigns to the class they were asked for,
  and its mean confidence (softmax probability of that class);
- Fréchet distance between the classifier's penultimate features of two image sets,
  ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½), overall and per class;
- diversity: the mean pairwise feature distance within a class, relative to real images.

Images are ``(N, 1, 32, 32)`` in [-1, 1], preprocessed as the lab does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.checkpoint import CheckpointError, read_tensors, save_tensors
from core.data import ImageBatches

FEATURES = 128


class Classifier(nn.Module):
    """Two conv blocks (16 and 32 channels, each conv-BN-ReLU twice, then 2× max-pool), a 128-wide
    penultimate layer, ten logits. ``features`` gives the penultimate layer ``(N, 128)``."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                nn.MaxPool2d(2),
            ]  # fmt: skip

        self.body = nn.Sequential(*block(1, 16), *block(16, 32), nn.Flatten(), nn.Dropout(0.25))
        self.penultimate = nn.Sequential(nn.Linear(32 * 8 * 8, FEATURES), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(FEATURES, num_classes))

    def features(self, x: Tensor) -> Tensor:
        return self.penultimate(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@torch.inference_mode()
def embed(classifier: Classifier, images: Tensor, batch: int = 500) -> tuple[Tensor, Tensor]:
    """Penultimate features ``(N, 128)`` and class probabilities ``(N, 10)``, in float64 on the CPU."""
    classifier.eval()
    device = next(classifier.parameters()).device
    features, probs = [], []
    for chunk in images.split(batch):
        f = classifier.features(chunk.to(device).float())
        features.append(f.double().cpu())
        probs.append(F.softmax(classifier.head(f), dim=1).double().cpu())
    return torch.cat(features), torch.cat(probs)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a ``(N, D)`` and b ``(M, D)``
    (NaN when either set has fewer than two rows: no covariance to fit)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root_a = _sqrt_psd(cov_a)
    cross = _sqrt_psd(root_a @ cov_b @ root_a)
    distance = float((mu_a - mu_b).square().sum() + torch.trace(cov_a + cov_b - 2 * cross))
    return max(distance, 0.0)  # ≥ 0 in exact arithmetic; rounding can dip just below


def _sqrt_psd(matrix: Tensor) -> Tensor:
    """The square root of a symmetric positive semi-definite matrix (eigenvalues clamped at 0)."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T


def mean_pairwise_distance(features: Tensor) -> float:
    """Mean Euclidean distance over all pairs of rows of ``(N, D)``."""
    n = len(features)
    if n < 2:
        return 0.0
    return float(torch.cdist(features, features).sum() / (n * (n - 1)))


@dataclass
class Quality:
    """What the classifier says about generated (or any) images against real test images."""

    accuracy: float  # share classified as the requested class
    confidence: float  # mean probability of the requested class
    frechet: float  # overall, against all real images
    frechet_per_class: dict[int, float]
    diversity: float  # mean over classes of (pairwise distance of samples / of real images)

    def to_dict(self) -> dict:
        """Plain JSON values; a measure that could not be taken (too few images) is None."""
        return {
            "accuracy": self.accuracy,
            "confidence": self.confidence,
            "frechet": _finite(self.frechet),
            "frechet_per_class": {str(k): _finite(v) for k, v in self.frechet_per_class.items()},
            "diversity": _finite(self.diversity),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def quality(
    classifier: Classifier, images: Tensor, labels: Tensor, real_images: Tensor, real_labels: Tensor
) -> Quality:
    """Compare ``images`` asked to be ``labels`` (``(N,)``, digits only) with real labelled images."""
    features, probs = embed(classifier, images)
    real_features, _ = embed(classifier, real_images)
    labels, real_labels = labels.cpu(), real_labels.cpu()
    picked = probs.gather(1, labels[:, None]).squeeze(1)
    classes = sorted(set(labels.tolist()))
    per_class = {c: frechet_distance(features[labels == c], real_features[real_labels == c]) for c in classes}
    real_spread = {c: mean_pairwise_distance(real_features[real_labels == c]) for c in classes}
    spread = [
        mean_pairwise_distance(features[labels == c]) / real_spread[c] for c in classes if real_spread[c]
    ]
    return Quality(
        accuracy=float((probs.argmax(1) == labels).double().mean()),
        confidence=float(picked.mean()),
        frechet=frechet_distance(features, real_features),
        frechet_per_class=per_class,
        diversity=sum(spread) / len(spread) if spread else math.nan,
    )


def train_classifier(
    train: ImageBatches,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    callback: Callable[[int, int, float], None] | None = None,
) -> Classifier:
    """Adam on shuffled epochs of ``train`` (cross-entropy); ``callback(epoch, step, loss)`` now and then."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = Classifier().to(train.device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    generator = torch.Generator(train.device).manual_seed(seed)
    classifier.train()
    for epoch in range(epochs):
        order = torch.randperm(len(train), generator=generator, device=train.device)
        for step, index in enumerate(order.split(batch_size)):
            loss = F.cross_entropy(classifier(train.images[index]), train.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if callback is not None and step % 50 == 0:
                callback(epoch, step, float(loss))
    return classifier.eval()


@torch.inference_mode()
def accuracy(classifier: Classifier, data: ImageBatches) -> float:
    _, probs = embed(classifier, data.images)
    return float((probs.argmax(1) == data.labels.cpu()).double().mean())


CLASSIFIER_FORMAT = "cfg-tui.classifier"


def save_classifier(path: str | os.PathLike, classifier: Classifier, metadata: dict[str, str]) -> Path:
    return save_tensors(path, classifier.state_dict(), {**metadata, "format": CLASSIFIER_FORMAT})


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[Classifier, dict]:
    """The classifier and its metadata; :class:`CheckpointError` (one line) for a wrong or damaged file."""
    tensors, metadata = read_tensors(path)
    if metadata.get("format") != CLASSIFIER_FORMAT:
        raise CheckpointError(f"{path} is not a cfg-tui classifier")
    classifier = Classifier()
    try:
        classifier.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(
            f"{path}: tensors do not fit the classifier ({str(e).splitlines()[0]})"
        ) from None
    return classifier.to(device).eval(), metadata
