"""Generate, then measure: one evaluation row per (guidance scale, sampler).

NFE counts U-Net evaluations (rows through the network) per sample, as spent: CFG needs the
conditional and the null field at 0 < w ≠ 1 (we batch them into one call, but the work is double),
interval guidance only inside its interval, and so on (:class:`core.guidance.Calls`).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from core.damage import DAMAGES, damaged
from core.data import ImageBatches, load_split
from core.guidance import CFG, Calls, Guidance
from core.metrics import Classifier, Reference, load_classifier, quality
from core.sampling import Sampler, resolve_grid, sample
from core.statistics import Measure, equal_quality
from core.unet import UNet

CHUNK = 250
SEED_STRIDE = 1000
"""Chunk i of a set of seed s draws its noise from seed 1000·s + i, so that sets of different seeds
share no noise (up to 1,000 chunks)."""
MEASURES = ("frechet", "kid", "precision", "recall")
HIGHER_IS_WORSE = {"frechet": True, "kid": True, "precision": False, "recall": False}


def load_yardstick(
    classifier_path: str | os.PathLike,
    device: torch.device | str,
    data_root: Path | None,
    feature_layer: str | None = None,
    log: Callable[[str], None] = lambda line: None,
    reference_per_class: int | None = None,
) -> tuple[Classifier, Reference]:
    """The classifier (measuring in ``feature_layer`` if given, else its own) and the MNIST test
    images of ``data_root`` (all 10,000, or the first ``reference_per_class`` of each digit)
    embedded once as the :class:`Reference`.

    :class:`core.checkpoint.CheckpointError` for a bad classifier file, :class:`core.data.DataError`
    when the test images cannot be had."""
    classifier, _ = load_classifier(classifier_path, device)
    if feature_layer is not None:
        classifier.feature_layer = feature_layer
    test, _ = load_split("mnist", "test", data_root, device=device, log=log)
    images, labels = (
        (test.images, test.labels) if reference_per_class is None else balanced(test, reference_per_class)
    )
    return classifier, Reference.of(classifier, images, labels)


def cell_name(w: float, sampler: Sampler) -> str:
    """``w=3 midpoint×4``, with the grid and method where they are not the lab's."""
    name = f"w={w:g} {sampler.solver}×{sampler.steps}"
    if sampler.grid != "uniform":
        name += f" {sampler.grid}"
    if not isinstance(sampler.guide, CFG):
        name += f" {sampler.guide.describe()}"
    return name


def evaluate_samples(
    model: UNet,
    classifier: Classifier,
    reference: Reference,
    w: float,
    sampler: Sampler,
    per_class: int,
    seed: int = 0,
    grid: Tensor | None = None,
) -> dict:
    """Generate ``per_class`` samples of every digit with ``sampler`` (on ``grid``, resolved from the
    sampler when None) and measure them against ``reference``. ``nfe`` is counted, not assumed."""
    labels = torch.arange(model.config.num_classes).repeat_interleave(per_class)
    grid = grid if grid is not None else resolve_grid(sampler, model, None)
    calls = Calls()
    start = time.perf_counter()
    # Chunks of a few hundred: on a CPU one batch of thousands spends more time allocating
    # activations than computing them (measured: 3x the wall time, most of it in the kernel).
    chunks = [
        sample(model, chunk, w, sampler, grid, seed=SEED_STRIDE * seed + i, calls=calls)
        for i, chunk in enumerate(labels.split(CHUNK))
    ]
    calls.batch = len(labels)  # the rows add up over the chunks; each chunk set its own batch
    images = torch.cat(chunks).clamp(-1, 1)
    seconds = time.perf_counter() - start
    return {"name": cell_name(w, sampler), "guidance": w, "solver": sampler.solver, "steps": sampler.steps,
            "grid": sampler.grid, "guide": sampler.guide.describe(), "seed": seed,
            "nfe": round(calls.nfe, 2), "seconds": round(seconds, 3),
            **quality(classifier, images, labels, reference, seed).to_dict()}  # fmt: skip


def score(classifier: Classifier, reference: Reference, name: str, images: Tensor, labels: Tensor) -> dict:
    """An evaluation row for any labelled images (real, damaged, or samples from a file)."""
    measured = quality(classifier, images, labels.cpu(), reference)
    return {"name": name, "guidance": None, "solver": None, "steps": None, "grid": None, "guide": None,
            "seed": None, "nfe": 0,
            "seconds": 0.0, **measured.to_dict()}  # fmt: skip


def balanced(data: ImageBatches, per_class: int) -> tuple[Tensor, Tensor]:
    """The first ``per_class`` images of each class of ``data``, class by class."""
    labels = data.labels.cpu()
    picks = torch.cat(
        [torch.nonzero(labels == c).squeeze(1)[:per_class] for c in range(int(labels.max()) + 1)]
    )
    return data.images[picks.to(data.device)].cpu(), labels[picks]


def reference_rows(
    classifier: Classifier, reference: Reference, train: ImageBatches, per_class: int
) -> list[dict]:
    """What the numbers look like for real training images (the floor) and for noise."""
    images, labels = balanced(train, per_class)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    return [
        score(classifier, reference, "real training images", images, labels),
        score(classifier, reference, "noise", noise, labels),
    ]


def samplers(
    solvers: Sequence[str],
    step_counts: Sequence[int],
    guides: Sequence[Guidance] = (CFG(),),
    grids: Sequence[str] = ("uniform",),
) -> list[Sampler]:
    """Every solver × steps × method × grid combination (ValueError, one line, for a bad one)."""
    return [
        Sampler(solver=solver, steps=steps, grid=grid, guide=guide)
        for solver, steps, guide, grid in itertools.product(solvers, step_counts, guides, grids)
    ]


def sweep(
    model: UNet,
    classifier: Classifier,
    reference: Reference,
    scales: Sequence[float],
    cells: Sequence[Sampler],
    per_class: int,
    seed: int = 0,
    on_row: Callable[[dict], None] = lambda row: None,
    grid_of: Callable[[Sampler], Tensor] | None = None,
) -> list[dict]:
    """Every (w, sampler) cell, each from the same initial noise (``seed``); ``on_row`` is called with
    each row as soon as it is measured. ``grid_of`` resolves a sampler's grid (by default
    :func:`core.sampling.resolve_grid` without a store: fitted grids are fitted here)."""
    grid_of = grid_of or (lambda s: resolve_grid(s, model, None))
    grids = {cell: grid_of(cell) for cell in dict.fromkeys(cells)}
    rows = []
    for w in scales:
        for cell in cells:
            row = evaluate_samples(model, classifier, reference, w, cell, per_class, seed, grids[cell])
            rows.append(row)
            on_row(row)
    return rows


CHECK_GUIDANCE = 3.0
CHECK_SOLVER_STEPS = (2, 4, 8, 99)
"""The generated sets of ``cfg-tui eval check``: Euler at these steps, w = 3."""
FLOOR = "real train"


def check_rows(
    classifier: Classifier,
    reference: Reference,
    train: ImageBatches,
    per_class: int,
    model: UNet | None = None,
    on_row: Callable[[dict], None] = lambda row: None,
) -> list[dict]:
    """The floor (real training images against the reference), the same images under each damage of
    :data:`core.damage.DAMAGES`, and, with a model, its samples at w = 3 with Euler 2/4/8/99."""
    images, labels = balanced(train, per_class)
    rows = []

    def add(row: dict, kind: str | None = None, strength: float | None = None) -> None:
        rows.append(row | {"damage": kind, "strength": strength})
        on_row(rows[-1])

    add(score(classifier, reference, FLOOR, images, labels))
    for kind, (unit, strengths) in DAMAGES.items():
        for strength in strengths:
            name = f"{kind} {unit} {strength:g}"
            add(score(classifier, reference, name, damaged(images, kind, strength), labels), kind, strength)
    for steps in CHECK_SOLVER_STEPS if model is not None else ():
        euler = Sampler(solver="euler", steps=steps)
        add(evaluate_samples(model, classifier, reference, CHECK_GUIDANCE, euler, per_class))
    return rows


def badness(row: dict, measure: str) -> float:
    """How far from real a row is by ``measure``: the value, or 1 − value where higher is better."""
    value = row[measure]
    return value if HIGHER_IS_WORSE[measure] else 1 - value


def judge(rows: list[dict], measure: str) -> dict[str, tuple[bool, float]]:
    """Per kind of damage: whether ``measure`` worsens with every step of strength, and how many
    combined spreads the mildest damage sits above the floor (it must be at least 3)."""
    floor = next(r for r in rows if r["name"] == FLOOR)
    verdicts = {}
    for kind in DAMAGES:
        series = sorted((r for r in rows if r.get("damage") == kind), key=lambda r: r["strength"])
        worse = [badness(r, measure) for r in series]
        grows = all(b > a for a, b in itertools.pairwise(worse))
        spread = math.hypot(series[0][f"{measure}_spread"] or 0.0, floor[f"{measure}_spread"] or 0.0)
        margin = (worse[0] - badness(floor, measure)) / spread if spread > 0 else math.inf
        verdicts[kind] = (grows, margin)
    return verdicts


Cell = tuple[float, str, int, str, str]
"""(w, solver, steps, grid, method) of an evaluation row."""
LAB_CELL = ("euler", 99, "uniform", "cfg")


def cell_of(row: dict) -> Cell:
    return (row["guidance"], row["solver"], row["steps"], row.get("grid", "uniform"), row.get("guide", "cfg"))


def pooled(rows: list[dict], measure: str) -> dict[Cell, Measure]:
    """Each (w, solver, steps, grid, method) cell's ``measure`` averaged over its seeds, with the
    spread of that mean (√Σ s² / k for k seeds)."""
    cells: dict[Cell, list[dict]] = {}
    for row in rows:
        if row.get("solver") is not None:
            cells.setdefault(cell_of(row), []).append(row)
    return {
        cell: Measure(
            sum(r[measure] for r in group) / len(group),
            math.sqrt(sum((r[f"{measure}_spread"] or 0.0) ** 2 for r in group)) / len(group),
        )
        for cell, group in cells.items()
    }


def versus(rows: list[dict], measure: str = "frechet") -> list[dict]:
    """Every cell against the lab's sampler (Euler 99, uniform grid, CFG) at the same w: the
    seed-averaged ``measure`` of both, the relative difference, and whether they are of equal quality
    (:func:`core.statistics.equal_quality`)."""
    cells = pooled(rows, measure)
    compared = []
    for (w, s, n, grid, guide), m in cells.items():
        reference = cells.get((w, *LAB_CELL))
        if reference is None or (s, n, grid, guide) == LAB_CELL:
            continue
        compared.append({
            "guidance": w, "solver": s, "steps": n, "grid": grid, "guide": guide,
            measure: m.to_dict(), "reference": reference.to_dict(),
            "difference": (m.value - reference.value) / reference.value, "equal": equal_quality(m, reference),
        })  # fmt: skip
    return compared
