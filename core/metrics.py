"""Sample quality in numbers: an MNIST classifier and what it says about a set of images.

- accuracy: the share of samples the classifier assigns to the class they were asked for,
  and its mean confidence (softmax probability of that class);
- against a :class:`Reference` of real images, in the classifier's features: Fréchet distance (also
  per class), kernel distance, precision and recall, each with its spread (:mod:`core.statistics`);
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
from core.choices import FEATURE_LAYERS as FEATURE_LAYERS
from core.choices import check_feature_layer
from core.data import ImageBatches
from core.statistics import Distances, Target, distances, finite_or_none, frechet_distance

FEATURES = 128
COMBINED = 128 + 2 * 32 + 4 * 64


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class Classifier(nn.Module):
    """A small VGG-style CNN for 32×32 digits: two stages of two convolutions (32, then 64 channels)
    each ending in a 2× max-pool, a convolution at 128 averaged over the image (``pool``), a 128-wide
    layer (``penultimate``), ten logits."""

    def __init__(self, num_classes: int = 10, feature_layer: str = "combined") -> None:
        super().__init__()
        self.feature_layer = check_feature_layer(feature_layer)
        self.body = nn.Sequential(
            *_conv(1, 32), *_conv(32, 32), nn.MaxPool2d(2),
            *_conv(32, 64), *_conv(64, 64), nn.MaxPool2d(2),
            *_conv(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.penultimate = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, FEATURES), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURES, num_classes))
        # The training images' mean and spread of the combined features (set by calibrate()).
        self.register_buffer("combined_mean", torch.zeros(COMBINED))
        self.register_buffer("combined_std", torch.ones(COMBINED))

    def layers(self, x: Tensor) -> dict[str, Tensor]:
        """Every feature layer of ``x`` ``(N, 1, 32, 32)``, unstandardised: ``pool`` and ``penultimate``
        ``(N, 128)``, ``combined`` ``(N, 448)``."""
        first = self.body[:7](x)  # (N, 32, 16, 16)
        second = self.body[7:14](first)  # (N, 64, 8, 8)
        pooled = self.body[14:](second)
        penultimate = self.penultimate(pooled)
        strokes = torch.cat([first.mean((2, 3)), first.std((2, 3))], 1)
        places = F.adaptive_avg_pool2d(second, 2).flatten(1)
        combined = torch.cat([penultimate, strokes, places], 1)
        return {"pool": pooled, "penultimate": penultimate, "combined": combined}

    def features(self, layers: dict[str, Tensor]) -> Tensor:
        """The classifier's feature layer out of :meth:`layers`' output (``combined`` standardised)."""
        if self.feature_layer == "combined":
            return (layers["combined"] - self.combined_mean) / self.combined_std
        return layers[self.feature_layer]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.penultimate(self.body(x)))


@torch.inference_mode()
def calibrate(classifier: Classifier, images: Tensor, batch: int = 500) -> None:
    """Set the combined features' standardisation from ``images`` (the training images)."""
    classifier.eval()
    device = next(classifier.parameters()).device
    combined = torch.cat(
        [classifier.layers(x.to(device).float())["combined"].double() for x in images.split(batch)]
    )
    classifier.combined_mean.copy_(combined.mean(0))
    std = combined.std(0)
    # A unit dead on every training image (std 0) must not turn a sample that wakes it into a
    # distance of millions: such units are scaled as a typical one is.
    classifier.combined_std.copy_(std.clamp_min(0.01 * float(std.median())))


@torch.inference_mode()
def embed(classifier: Classifier, images: Tensor, batch: int = 500) -> tuple[Tensor, Tensor]:
    """The classifier's features ``(N, D)`` and class probabilities ``(N, 10)``, float64 on the CPU."""
    classifier.eval()
    device = next(classifier.parameters()).device
    features, probs = [], []
    for chunk in images.split(batch):
        layers = classifier.layers(chunk.to(device).float())
        features.append(classifier.features(layers).double().cpu())
        probs.append(F.softmax(classifier.head(layers["penultimate"]), dim=1).double().cpu())
    return torch.cat(features), torch.cat(probs)


def mean_pairwise_distance(features: Tensor) -> float:
    """Mean Euclidean distance over all pairs of rows of ``(N, D)``."""
    n = len(features)
    if n < 2:
        return 0.0
    return float(torch.cdist(features, features).sum() / (n * (n - 1)))


@dataclass(frozen=True)
class Reference:
    """Real labelled images, embedded once, with their statistics: the yardstick's other side."""

    target: Target  # the features (N, D) float64, their mean, covariance and kernel mean
    labels: Tensor  # (N,)

    @classmethod
    def of(cls, classifier: Classifier, images: Tensor, labels: Tensor) -> Reference:
        return cls(Target.of(embed(classifier, images)[0]), labels.cpu())

    @property
    def features(self) -> Tensor:
        return self.target.features

    def manifold(self, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
        """``n`` of the features (all if fewer) and their labels, drawn once for a seed: the reference
        of precision and recall, whose k-NN radii depend on the size of the set."""
        if n >= len(self.features):
            return self.features, self.labels
        pick = torch.randperm(len(self.features), generator=torch.Generator().manual_seed(seed))[:n]
        return self.features[pick], self.labels[pick]


@dataclass
class Quality:
    """What the classifier says about generated (or any) images against real ones."""

    accuracy: float  # share classified as the requested class
    confidence: float  # mean probability of the requested class
    distances: Distances  # FD, KID, precision, recall against the reference, with spreads, and n
    frechet_per_class: dict[int, float]
    diversity: float  # mean over classes of (pairwise distance of samples / of real images)

    @property
    def frechet(self) -> float:
        return self.distances.frechet.value

    def to_dict(self) -> dict:
        """Plain JSON values, each measure with its spread; one that could not be taken is None."""
        d = self.distances
        measures = {"frechet": d.frechet, "kid": d.kid, "precision": d.precision, "recall": d.recall}
        flat = {}
        for name, m in measures.items():
            flat |= {name: finite_or_none(m.value), f"{name}_spread": finite_or_none(m.spread)}
        return {
            "n": d.n,
            "accuracy": self.accuracy,
            "confidence": self.confidence,
            **flat,
            "frechet_per_class": {str(k): finite_or_none(v) for k, v in self.frechet_per_class.items()},
            "diversity": finite_or_none(self.diversity),
        }


def quality(
    classifier: Classifier, images: Tensor, labels: Tensor, reference: Reference, seed: int = 0
) -> Quality:
    """Compare ``images`` asked to be ``labels`` (``(N,)``, digits only) with the real ``reference``."""
    features, probs = embed(classifier, images)
    real_features, real_labels = reference.features, reference.labels
    labels = labels.cpu()
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
        distances=_distances(features, labels, reference, seed),
        frechet_per_class=per_class,
        diversity=sum(spread) / len(spread) if spread else math.nan,
    )


def _distances(features: Tensor, labels: Tensor, reference: Reference, seed: int) -> Distances:
    manifold, manifold_labels = reference.manifold(len(features), seed)
    return distances(features, reference.target, manifold, seed, labels, manifold_labels)


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random small affine changes of ``(N, 1, H, W)`` images in [-1, 1]: rotation within ±10°,
    scale 0.9–1.1, shift within ±2 pixels; what comes in from outside the image is background (−1)."""
    n, dev = len(images), images.device
    draw = lambda low, high: low + (high - low) * torch.rand(n, generator=generator, device=dev)  # noqa: E731
    angle, scale = draw(-math.pi / 18, math.pi / 18), draw(0.9, 1.1)
    shift = 2 * 2 / images.shape[-1]  # ±2 pixels in affine_grid's [-1, 1] coordinates
    tx, ty = draw(-shift, shift), draw(-shift, shift)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # grid_sample fills with 0: sample images + 1 (background 0), then shift back.
    return F.grid_sample(images + 1, grid, align_corners=False) - 1


def train_classifier(
    train: ImageBatches,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    augmented: bool = True,
    feature_layer: str = "combined",
    callback: Callable[[int, int, float], None] | None = None,
) -> Classifier:
    """Adam with a cosine-decaying learning rate on shuffled, augmented epochs of ``train``
    (cross-entropy); ``callback(epoch, step, loss)`` now and then."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = Classifier(feature_layer=feature_layer)
    classifier = classifier.to(train.device, memory_format=torch.channels_last)  # 1.3x on 2 CPU cores
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    steps = epochs * math.ceil(len(train) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator(train.device).manual_seed(seed)
    classifier.train()
    for epoch in range(epochs):
        order = torch.randperm(len(train), generator=generator, device=train.device)
        for step, index in enumerate(order.split(batch_size)):
            images = train.images[index]
            images = augment(images, generator) if augmented else images
            loss = F.cross_entropy(
                classifier(images.contiguous(memory_format=torch.channels_last)), train.labels[index]
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if callback is not None and step % 50 == 0:
                callback(epoch, step, float(loss))
    calibrate(classifier, train.images)
    return classifier.eval()


@torch.inference_mode()
def accuracy(classifier: Classifier, data: ImageBatches) -> float:
    _, probs = embed(classifier, data.images)
    return float((probs.argmax(1) == data.labels.cpu()).double().mean())


CLASSIFIER_FORMAT = "cfg-tui.classifier"
CLASSIFIER_VERSION = "2"  # 1: the 16/32-channel CNN of the first eval


def save_classifier(path: str | os.PathLike, classifier: Classifier, metadata: dict[str, str]) -> Path:
    meta = {**metadata, "format": CLASSIFIER_FORMAT, "version": CLASSIFIER_VERSION}
    return save_tensors(path, classifier.state_dict(), {**meta, "feature_layer": classifier.feature_layer})


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[Classifier, dict]:
    """The classifier and its metadata; :class:`CheckpointError` (one line) for a wrong or damaged file."""
    tensors, metadata = read_tensors(path)
    if metadata.get("format") != CLASSIFIER_FORMAT:
        raise CheckpointError(f"{path} is not a cfg-tui classifier")
    if metadata.get("version") != CLASSIFIER_VERSION:
        raise CheckpointError(
            f"{path} is a classifier of version {metadata.get('version', '1')}, "
            f"expected {CLASSIFIER_VERSION}; remake it with cfg-tui eval train-classifier"
        )
    try:
        classifier = Classifier(feature_layer=metadata.get("feature_layer", "combined"))
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    try:
        classifier.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(
            f"{path}: tensors do not fit the classifier ({str(e).splitlines()[0]})"
        ) from None
    return classifier.to(device, memory_format=torch.channels_last).eval(), metadata  # as trained
