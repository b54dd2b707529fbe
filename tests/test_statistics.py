"""The yardstick's statistics on made-up features, where the right answers are known."""

from __future__ import annotations

import math

import pytest
import torch

from core.statistics import Measure, Target, distances, equal_quality, kernel_distance, polynomial_kernel

D = 16


def gaussian(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def clusters(per_class: int, seed: int, classes: range = range(10)) -> torch.Tensor:
    """Ten well-separated classes: class c around 6·e_c (axis c of D), with unit spread along three
    shared axes (features of real digits lie near a low-dimensional manifold, as these do)."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for c in classes:
        points = torch.zeros(per_class, D, dtype=torch.float64)
        points[:, c] = 6.0
        points[:, 10:13] += torch.randn(per_class, 3, generator=g, dtype=torch.float64)
        parts.append(points)
    return torch.cat(parts)


def test_kid_of_two_halves_of_one_set_is_zero_within_its_spread() -> None:
    data = gaussian(2000, seed=0)
    measured = distances(data[:1000], Target.of(data[1000:]), data[1000:])
    assert abs(measured.kid.value) <= 2 * measured.kid.spread
    assert 0 < measured.kid.spread < 0.05


def test_kid_is_unbiased_and_grows_with_the_shift() -> None:
    """The mean of KID over many draws of 50 matches its value on draws of 2,000 (FD's would not)."""
    large = kernel_distance(gaussian(2000, 1, shift=0.3), gaussian(2000, 2))
    small = [kernel_distance(gaussian(50, 10 + i, shift=0.3), gaussian(50, 500 + i)) for i in range(200)]
    mean = sum(small) / len(small)
    standard_error = math.sqrt(sum((v - mean) ** 2 for v in small) / (len(small) - 1) / len(small))
    assert abs(mean - large) < 3 * standard_error and large > 0
    shifts = [kernel_distance(gaussian(1000, 3, shift=s), gaussian(1000, 4)) for s in (0.1, 0.3, 0.6, 1.0)]
    assert shifts == sorted(shifts) and shifts[0] > 0


def test_the_kernel_is_the_cubic_polynomial() -> None:
    x, y = gaussian(3, 5), gaussian(4, 6)
    assert torch.allclose(polynomial_kernel(x, y), (x @ y.T / D + 1) ** 3)


def test_precision_and_recall_tell_quality_from_coverage() -> None:
    real, other_real = clusters(100, seed=0), clusters(100, seed=1)
    same = distances(other_real, Target.of(real), real)
    assert same.precision.value > 0.9 and same.recall.value > 0.9

    only_threes = clusters(1000, seed=2, classes=range(3, 4))
    one_class = distances(only_threes, Target.of(real), real)
    assert one_class.precision.value > 0.9 and one_class.recall.value <= 0.2

    noise = 4 * torch.randn(1000, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert distances(noise, Target.of(real), real).precision.value < 0.05


def test_the_spread_shrinks_like_one_over_root_n() -> None:
    ratios = []
    for measure in ("frechet", "kid", "precision"):
        small = getattr(
            distances(gaussian(400, 7, 0.2), Target.of(gaussian(4000, 8)), gaussian(400, 9)), measure
        ).spread
        large = getattr(
            distances(gaussian(1600, 7, 0.2), Target.of(gaussian(4000, 8)), gaussian(1600, 9)), measure
        ).spread
        ratios.append(small / large)  # √(1600 / 400) = 2
    assert all(1.4 < r < 2.8 for r in ratios), ratios


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (Measure(10.2, 0.3), Measure(10.0, 0.3), True),
        (Measure(11.0, 0.3), Measure(10.0, 0.3), False),  # outside the spread
        (Measure(10.6, 1.0), Measure(10.0, 1.0), False),  # inside the spread, but 6 % off
        (Measure(10.4, 1.0), Measure(10.0, 1.0), True),
    ],
)
def test_equal_quality_is_inside_the_spread_and_within_five_percent(
    a: Measure, b: Measure, equal: bool
) -> None:
    assert equal_quality(a, b) is equal


def test_the_check_judges_growth_and_the_margin_over_the_floor() -> None:
    from core.evaluation import FLOOR, judge

    def row(name: str, frechet: float, spread: float, damage: str | None = None, strength: float = 0) -> dict:
        return {
            "name": name,
            "frechet": frechet,
            "frechet_spread": spread,
            "damage": damage,
            "strength": strength,
        }

    rows = [row(FLOOR, 10.0, 1.0)]
    rows += [row(f"b{s}", v, 1.0, "blur", s) for s, v in ((0.3, 15.0), (0.6, 20.0), (1.0, 30.0))]
    rows += [row(f"n{s}", v, 1.0, "noise", s) for s, v in ((0.02, 11.0), (0.05, 20.0), (0.1, 19.0))]
    rows += [row("q", 40.0, 1.0, "quantise", 4), row("s", 10.5, 0.0, "shift", 1)]
    verdicts = judge(rows, "frechet")
    assert verdicts["blur"] == (True, pytest.approx(5 / math.sqrt(2)))
    assert verdicts["noise"][0] is False and verdicts["noise"][1] == pytest.approx(1 / math.sqrt(2))
    assert verdicts["quantise"][0] and verdicts["shift"][1] == pytest.approx(0.5)


def test_cells_are_compared_with_euler_99_averaged_over_seeds() -> None:
    from core.evaluation import versus

    def row(solver: str, steps: int, seed: int, frechet: float) -> dict:
        return {"guidance": 3.0, "solver": solver, "steps": steps, "seed": seed, "frechet": frechet,
                "frechet_spread": 1.0}  # fmt: skip

    rows = [row("euler", 99, 0, 20.0), row("euler", 99, 1, 22.0), row("midpoint", 4, 0, 21.0)]
    rows += [row("midpoint", 4, 1, 22.0), row("midpoint", 2, 0, 30.0), row("midpoint", 2, 1, 28.0)]
    by_cell = {(c["solver"], c["steps"]): c for c in versus(rows)}
    assert set(by_cell) == {("midpoint", 4), ("midpoint", 2)}  # not Euler 99 against itself
    four = by_cell[("midpoint", 4)]
    assert four["frechet"]["value"] == 21.5 and four["reference"]["value"] == 21.0
    assert four["frechet"]["spread"] == pytest.approx(math.sqrt(2) / 2)
    assert four["equal"] and not by_cell[("midpoint", 2)]["equal"]
    assert four["difference"] == pytest.approx(0.5 / 21)


def test_stratified_halves_keep_the_class_mix() -> None:
    from core.statistics import halves

    strata = torch.tensor([0] * 10 + [1] * 30 + [2] * 4)
    for half in halves(len(strata), torch.Generator().manual_seed(0), count=5, strata=strata):
        assert torch.bincount(strata[half]).tolist() == [5, 15, 2] and len(set(half.tolist())) == 22
    plain = halves(44, torch.Generator().manual_seed(0), count=50)
    assert {torch.bincount(strata[h], minlength=3)[1].item() for h in plain} != {15}  # the mix varies
