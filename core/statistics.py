"""Distances between two sets of features, and how sure they are.

Features are ``(N, D)`` float64 rows (a classifier's, see :mod:`core.metrics`); ``a`` is the set
measured (generated images), ``b`` the reference (real images).

- Fréchet distance (FD): ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a^½ Σ_b Σ_a^½)^½) between Gaussians
  fitted to each set. Biased by N (smaller sets score worse): always report N beside it.
- Kernel distance (KID, Bińkowski et al. 2018): the unbiased estimate of MMD² with the polynomial
  kernel k(x, y) = (xᵀy / D + 1)³; its expectation does not depend on N, and it is 0 for equal laws.
- Precision and recall (Kynkäänniemi et al. 2019): the manifold of a set is the union of balls around
  its points reaching each one's k-th nearest neighbour (k = 3); precision is the share of ``a``
  inside ``b``'s manifold (quality), recall the share of ``b`` inside ``a``'s (coverage, diversity).

Spread: each measure is recomputed on ``HALVES`` random halves of the set it averages over (drawn
without replacement, within each class where the classes are known); the standard deviation of those
values estimates the standard error at full N (half-sampling without replacement has, by the
finite-population correction, the variance of a full-size independent draw).
:func:`equal_quality` is the one definition of "equal".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

HALVES = 20
NEIGHBOURS = 3
EQUAL_WITHIN = 0.05
"""Two measures are equal when their difference is inside the spread and within 5 % of the reference."""


@dataclass(frozen=True)
class Measure:
    """A value with its spread (the standard error of the value, estimated by half-sampling)."""

    value: float
    spread: float

    def to_dict(self) -> dict:
        return {"value": finite_or_none(self.value), "spread": finite_or_none(self.spread)}


def finite_or_none(x: float) -> float | None:
    """A number for JSON: None where it could not be measured (NaN, inf)."""
    return x if math.isfinite(x) else None


def equal_quality(a: Measure, b: Measure) -> bool:
    """The one definition of "equal quality": ``a`` and ``b`` differ by no more than their combined
    spread √(s_a² + s_b²) and by no more than 5 % of ``b`` (the reference)."""
    difference = abs(a.value - b.value)
    return difference <= math.hypot(a.spread, b.spread) and difference <= EQUAL_WITHIN * abs(b.value)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """FD between Gaussians fitted to ``a`` ``(N, D)`` and ``b`` ``(M, D)`` (NaN with fewer than 2 rows)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return _frechet(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))


def _frechet(mu_a: Tensor, cov_a: Tensor, mu_b: Tensor, cov_b: Tensor) -> float:
    root_a = _sqrt_psd(cov_a)
    cross = _sqrt_psd(root_a @ cov_b @ root_a)
    distance = float((mu_a - mu_b).square().sum() + torch.trace(cov_a + cov_b - 2 * cross))
    return max(distance, 0.0)  # ≥ 0 in exact arithmetic; rounding can dip just below


def _sqrt_psd(matrix: Tensor) -> Tensor:
    """The square root of a symmetric positive semi-definite matrix (eigenvalues clamped at 0)."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T


def polynomial_kernel(x: Tensor, y: Tensor) -> Tensor:
    """k(x, y) = (xᵀy / D + 1)³ for rows of ``(N, D)`` and ``(M, D)`` → ``(N, M)``."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def _off_diagonal_mean(k: Tensor) -> float:
    n = len(k)
    return float((k.sum() - k.diagonal().sum()) / (n * (n - 1)))


def _self_kernel_mean(x: Tensor, chunk: int = 2000) -> float:
    """The mean of k(x_i, x_j) over i ≠ j, a block of rows at a time (10,000² doubles would be 800 MB)."""
    total = sum(float(polynomial_kernel(part, x).sum()) for part in x.split(chunk))
    diagonal = float(((x * x).sum(1) / x.shape[1] + 1).pow(3).sum())
    return (total - diagonal) / (len(x) * (len(x) - 1))


def kernel_distance(a: Tensor, b: Tensor) -> float:
    """KID: the unbiased MMD² estimate between ``a`` and ``b`` (each at least 2 rows)."""
    k_ab = float(polynomial_kernel(a, b).mean())
    return _self_kernel_mean(a) + _self_kernel_mean(b) - 2 * k_ab


def knn_radii(points: Tensor, k: int = NEIGHBOURS) -> Tensor:
    """The distance from each row of ``points`` ``(N, D)`` to its k-th nearest other row ``(N,)``."""
    distances = torch.cdist(points.float(), points.float())
    return distances.kthvalue(k + 1, dim=1).values  # the 1st is the point itself


def inside(points: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """Whether each row of ``points`` lies in some ball (``centres``, ``radii``): bool ``(N,)``."""
    return (torch.cdist(points.float(), centres.float()) <= radii[None, :]).any(dim=1)


def half_spread(values: list[float]) -> float:
    """The standard deviation of half-sample values around their own mean (not around the full-set
    value: a measure biased by n, as FD, sits higher on halves, and that offset is not spread)."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return math.nan
    mean = sum(finite) / len(finite)
    return math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))


def halves(
    n: int, generator: torch.Generator, count: int = HALVES, strata: Tensor | None = None
) -> list[Tensor]:
    """``count`` random halves (index sets, without replacement) of range(n); with ``strata`` ``(n,)``
    (the classes), half of each stratum, so that the class mix of a balanced set is kept."""
    groups = (
        [torch.arange(n)]
        if strata is None
        else [torch.nonzero(strata == s).squeeze(1) for s in strata.unique()]
    )

    def half() -> Tensor:
        return torch.cat([g[torch.randperm(len(g), generator=generator)[: len(g) // 2]] for g in groups])

    return [half() for _ in range(count)]


@dataclass(frozen=True)
class Distances:
    """Every set-to-set measure of ``a`` against ``b``, each with its spread, and the sizes."""

    n: int
    frechet: Measure
    kid: Measure
    precision: Measure
    recall: Measure

    def to_dict(self) -> dict:
        measures = {
            "frechet": self.frechet,
            "kid": self.kid,
            "precision": self.precision,
            "recall": self.recall,
        }
        return {"n": self.n, **{name: m.to_dict() for name, m in measures.items()}}


@dataclass(frozen=True)
class Target:
    """A reference set of features ``(M, D)`` with what every comparison against it needs, computed
    once: its mean, covariance and the mean of its kernel over pairs (for 10,000 rows of 448 features
    these take about 2 s, more than half of one :func:`distances` call)."""

    features: Tensor
    mean: Tensor
    cov: Tensor
    self_kernel: float

    @classmethod
    def of(cls, b: Tensor) -> Target:
        return cls(b, b.mean(0), torch.cov(b.T), _self_kernel_mean(b))


def distances(
    a: Tensor,
    target: Target,
    b_for_manifold: Tensor,
    seed: int = 0,
    a_strata: Tensor | None = None,
    manifold_strata: Tensor | None = None,
) -> Distances:
    """FD and KID of ``a`` against ``target``; precision and recall against ``b_for_manifold`` (a
    reference of about ``a``'s size: k-NN radii depend on the size of the set). Spreads by
    half-sampling, within each class when the classes (``*_strata``) are given: a set drawn 100 per
    digit varies in its images, not in its mix of digits."""
    generator = torch.Generator().manual_seed(seed)
    mu_b, cov_b, k_bb = target.mean, target.cov, target.self_kernel
    frechet = _frechet(a.mean(0), torch.cov(a.T), mu_b, cov_b) if len(a) > 1 else math.nan
    k_aa, k_ab = polynomial_kernel(a, a), polynomial_kernel(a, target.features).mean(1)
    kid = _off_diagonal_mean(k_aa) + k_bb - 2 * float(k_ab.mean())
    if min(len(a), len(b_for_manifold)) > NEIGHBOURS:
        precise = inside(a, b_for_manifold, knn_radii(b_for_manifold)).double()
        covered = inside(b_for_manifold, a, knn_radii(a)).double()
    else:  # too few points for k-NN balls
        precise, covered = torch.full((len(a),), math.nan), torch.full((len(b_for_manifold),), math.nan)
    frechet_h, kid_h, precision_h = [], [], []
    for index in halves(len(a), generator, strata=a_strata):
        part = a[index]
        frechet_h.append(_frechet(part.mean(0), torch.cov(part.T), mu_b, cov_b))
        kid_h.append(_off_diagonal_mean(k_aa[index][:, index]) + k_bb - 2 * float(k_ab[index].mean()))
        precision_h.append(float(precise[index].mean()))
    recall_h = [
        float(covered[index].mean()) for index in halves(len(covered), generator, strata=manifold_strata)
    ]
    precision, recall = float(precise.mean()), float(covered.mean())
    return Distances(
        n=len(a),
        frechet=Measure(frechet, half_spread(frechet_h)),
        kid=Measure(kid, half_spread(kid_h)),
        precision=Measure(precision, half_spread(precision_h)),
        recall=Measure(recall, half_spread(recall_h)),
    )
