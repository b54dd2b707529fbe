"""Which training tricks buy quality per minute (issue 14): a base recipe against each trick alone
and all together, each trained for the same wall-clock budget, with weight snapshots at fixed
fractions of that budget, to be measured afterwards with the yardstick (``cfg-tui eval``).

Time is counted as steps × the recipe's own seconds per step, measured back to back in one
process before any training (:func:`seconds_per_step`) as the process's CPU time: the runs (and
the timing) may then share the machine with other work (an evaluation of the previous snapshots,
say) without changing which snapshot is taken when. With one thread, CPU time is the wall time
the step would take alone on one core. Each recipe's step count is its budget ÷ its seconds per
step, and its lr schedule spans exactly those steps.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from core.checkpoint import save_checkpoint
from core.data import ImageBatches
from core.presets import Preset
from core.trainer import EMA, CFGTrainer, new_model, resolve_precision


@dataclass(frozen=True)
class Variant:
    """A recipe: the base preset's training settings with ``changes``; ``extra_emas`` are EMA
    decays kept alongside and snapshotted too (an EMA does not change the training itself)."""

    name: str
    changes: dict
    extra_emas: tuple[float, ...] = ()
    budget_fraction: float = 1.0  # of the base's budget: a shorter run, its schedule ending sooner


def seconds_per_step(
    preset: Preset, variants: Sequence[Variant], data: ImageBatches, steps: int = 12, repeats: int = 3
) -> dict[str, float]:
    """Each variant's CPU seconds per training step (its own EMA included, the extra ones not: they
    are a measurement), the fastest of ``repeats`` rounds of ``steps`` steps, the variants interleaved
    so that a slow moment hits all of them."""
    plain = [dataclasses.replace(v, extra_emas=()) for v in variants]
    trainers = {v.name: _trainer(preset, v, data, steps=10**6) for v in plain}
    best = {name: float("inf") for name in trainers}
    for _ in range(repeats):
        for v in plain:
            trainer, emas = trainers[v.name]
            for _ in range(2):  # warm-up: allocator, kernels, autocast caches
                _step(trainer, emas)
            start = time.process_time()
            for _ in range(steps):
                _step(trainer, emas)
            best[v.name] = min(best[v.name], (time.process_time() - start) / steps)
    return best


def pooled(timings: dict[str, float], preset: Preset, variants: Sequence[Variant]) -> dict[str, float]:
    """The timings with variants of the same compute (precision, EMA, compile, memory format; the
    time sampling, betas and lr schedule change no work) given the fastest of them: otherwise the
    noise of the clock, a few per cent, would give equal work different step counts."""
    device = torch.device("cpu")

    def work(v: Variant) -> tuple:
        c = dataclasses.replace(preset.train, **v.changes)
        return resolve_precision(c.precision, device), c.ema_decay > 0, c.compile, c.channels_last

    fastest: dict[tuple, float] = {}
    for v in variants:
        fastest[work(v)] = min(fastest.get(work(v), float("inf")), timings[v.name])
    return {v.name: fastest[work(v)] for v in variants}


def _trainer(
    preset: Preset, variant: Variant, data: ImageBatches, steps: int
) -> tuple[CFGTrainer, list[EMA]]:
    config = dataclasses.replace(preset.train, **variant.changes, steps=steps)
    trainer = CFGTrainer(new_model(preset.model, config.seed), data, config)
    return trainer, [EMA(trainer.model, d) for d in variant.extra_emas]


def _step(trainer: CFGTrainer, emas: list[EMA]) -> None:
    float(trainer.train_step())  # wait for it, as a clock must
    for ema in emas:
        ema.update(trainer.model)


def train_variant(
    preset: Preset,
    variant: Variant,
    data: ImageBatches,
    budget: float,
    step_seconds: float,
    fractions: Sequence[float],
    out: Path,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train ``variant`` for ``budget × variant.budget_fraction`` seconds of its own steps, saving the
    weights to sample from (and each extra EMA) at each fraction of that time, under ``out/name/``.
    Returns one record per snapshot file; also written to ``out/name/snapshots.json``."""
    seconds = budget * variant.budget_fraction
    total = max(1, round(seconds / step_seconds))
    trainer, emas = _trainer(preset, variant, data, steps=total)
    folder = out / variant.name.replace(" ", "_")
    folder.mkdir(parents=True, exist_ok=True)
    at = {max(1, round(f * total)): f for f in fractions}
    records, started = [], time.perf_counter()
    while trainer.step < total:
        _step(trainer, emas)
        if trainer.step in at:
            fraction = at[trainer.step]
            weights = [("", trainer.sampling_model)] + [(f"-ema{e.decay:g}", e.model) for e in emas]
            if trainer.ema is not None:  # the trained weights too, to tell what the EMA adds
                weights.append(("-raw", trainer.model))
            for suffix, model in weights:
                path = folder / f"t{fraction:.3f}{suffix}.safetensors"
                save_checkpoint(path, model, {"step": str(trainer.step)})
                records.append({
                    "variant": variant.name, "weights": suffix.lstrip("-") or "main", "fraction": fraction,
                    "step": trainer.step, "steps": total, "seconds": round(trainer.step * step_seconds, 1),
                    "file": str(path),
                })  # fmt: skip
            log(f"{variant.name}: step {trainer.step}/{total} ({time.perf_counter() - started:.0f} s)")
    (folder / "snapshots.json").write_text(json.dumps(records, indent=1))
    return records


def default_variants(ema_decay: float = 0.999) -> list[Variant]:
    """The ablation of issue 14 over the old ``cpu`` preset. Each trick alone gets a third of the
    budget (with a constant lr, a snapshot at a third of a longer run is the same weights, so the
    base's third is its reference); the base and all tricks together get all of it, and all
    together also a third, with its lr schedule ending there."""
    schedule = {"warmup_steps": 100, "lr_decay": "cosine", "lr_floor": 0.1}
    everything = {"time_sampling": "logit-normal", **schedule, "beta2": 0.95, "precision": "auto",
                  "ema_decay": ema_decay}  # fmt: skip
    third = 1 / 3
    return [
        Variant("base", {}, extra_emas=(0.99, 0.999)),
        Variant("logit-normal", {"time_sampling": "logit-normal"}, budget_fraction=third),
        Variant("warm-up+cosine", schedule, budget_fraction=third),
        Variant("beta2 0.95", {"beta2": 0.95}, budget_fraction=third),
        Variant("bf16", {"precision": "auto"}, budget_fraction=third),
        # Below ~9,000 steps every decay ≥ 0.999 is the warm-up's (1 + n)/(10 + n): try shorter ones.
        Variant("all", everything, extra_emas=(0.99, 0.995)),
        Variant("all third", everything, budget_fraction=third),
    ]


def collect(out: Path) -> list[dict]:
    """Every measured snapshot of an ablation folder: its record, its share of the base budget, and
    its evaluation rows (``<snapshot>.json``, written by ``cfg-tui eval --out``), by variant and time."""
    budget = json.loads((out / "timings.json").read_text())["budget"]
    rows = []
    for snapshots in sorted(out.glob("*/snapshots.json")):
        for record in json.loads(snapshots.read_text()):
            measured = Path(record["file"]).with_suffix(".json")
            if measured.exists():
                evals = [r for r in json.loads(measured.read_text()) if r.get("guidance") is not None]
                rows.append({**record, "share": record["seconds"] / budget, "evals": evals})
    return sorted(rows, key=lambda r: (r["variant"], r["weights"], r["share"]))


def at_guidance(evals: list[dict], w: float) -> dict | None:
    return next((e for e in evals if e["guidance"] == w), None)


def best(evals: list[dict]) -> dict:
    """The row with the lowest Fréchet distance."""
    return min(evals, key=lambda e: e["frechet"])
