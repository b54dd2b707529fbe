"""``cfg-tui bench``: our loops against straightforward implementations of the lab's, in one process."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from core.choices import SOLVERS, check_steps
from core.configs import BATCH, GUIDANCE, REPEATS, SECONDS, SOLVER_STEPS, THREADS, TrainConfig, UNetConfig
from core.data import DATASETS, default_data_root
from core.files import atomic_write_text, writing
from core.presets import PRESETS
from core.settings import check_training_memory, resolve_device
from tui.commands.common import DataRoot, check_folder, log, number, parse_floats, whole
from tui.parse import whole_number

# Everything timed here loads torch: imported in the commands, so that --help does not wait for it.
if TYPE_CHECKING:
    import torch

    from core.sampling import Sampler
    from core.unet import UNet

app = typer.Typer(help="Benchmarks against the lab's own loops, run side by side.", no_args_is_help=True)


@app.command("data")
def data_share(
    batch_size: int = typer.Option(250, parser=whole(BATCH), help="Images per batch (the lab's is 250)."),
    repeats: int = typer.Option(3, parser=whole(REPEATS), help="Timed repeats; the median is reported."),
    dataset: str = typer.Option("mnist", help=", ".join(DATASETS)),
    data_root: Path | None = DataRoot,
) -> None:
    """The data share of one training step: the lab's item-by-item PIL sampler versus ours."""
    import torch

    from core.bench import LabSampler, median_seconds
    from core.data import load_split
    from core.trainer import CFGTrainer, new_model

    check_training_memory(UNetConfig(), batch_size, torch.device("cpu"))
    root = data_root or default_data_root()
    ours, _ = load_split(dataset, "train", root, log=log)
    _check_batch(batch_size, len(ours))
    lab = LabSampler(DATASETS[dataset], root)
    trainer = CFGTrainer(new_model(UNetConfig(), 0), ours, TrainConfig(batch_size=batch_size))
    generator = torch.Generator().manual_seed(0)
    z, y = ours.sample(batch_size, generator)

    lab_data = median_seconds(lambda: lab.sample(batch_size), repeats)
    our_data = median_seconds(lambda: ours.sample(batch_size, generator), repeats)
    compute = median_seconds(lambda: trainer.optimize(z, y), repeats)
    typer.echo(f"training step at batch {batch_size}, default U-Net, cpu, {torch.get_num_threads()} threads")
    typer.echo(f"  compute (forward + backward + Adam): {compute * 1e3:10.1f} ms")
    for name, seconds in (
        ("lab: item-by-item PIL sampler", lab_data),
        ("ours: one indexing operation", our_data),
    ):
        share = 100 * seconds / (seconds + compute)
        typer.echo(f"  {name:32s} {seconds * 1e3:10.3f} ms   data share of a step {share:6.2f} %")
    typer.echo(f"  data loading speed-up: {lab_data / our_data:,.0f}x")


def _check_batch(batch_size: int, images: int) -> None:
    if batch_size > images:
        raise typer.BadParameter(f"--batch-size {batch_size} exceeds the {images} training images")


def _synced(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """``fn`` that returns only when the device has finished its work (so that timing is honest)."""
    import torch

    def call() -> None:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return call


def _our_variants(device: torch.device, compile: bool) -> dict[str, dict]:
    """Our training settings to time: NCHW, channels_last, bf16 where the device has it, compile."""
    from core.trainer import native_bf16

    variants: dict[str, dict] = {"ours, NCHW fp32": {"channels_last": False}, "ours, channels_last fp32": {}}
    bf16 = native_bf16(device)
    if bf16:
        variants["ours, channels_last + bf16"] = {"precision": "bf16"}
    if compile:
        extra = {"precision": "bf16"} if bf16 else {}
        variants[f"ours, {'bf16 + ' if bf16 else ''}torch.compile"] = {**extra, "compile": True}
    return variants


@app.command("train")
def train_speed(
    batch_size: int = typer.Option(
        250, parser=whole(BATCH), help="Images per step (the seed preset's is 250)."
    ),
    repeats: int = typer.Option(
        5, parser=whole(REPEATS), help="Timed steps per variant, in turns; the median is reported."
    ),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    compile: bool = typer.Option(False, "--compile", help="Also time ours under torch.compile."),
    data_root: Path | None = DataRoot,
) -> None:
    """Training steps of the seed preset: the lab's loop against ours, same U-Net, same device."""
    import torch

    from core.bench import LabSampler, PeakMemory, interleaved_medians, lab_train_step, training_flops
    from core.data import load_split
    from core.trainer import CFGTrainer, native_bf16, new_model

    torch_device = resolve_device(device)
    check_training_memory(UNetConfig(), batch_size, torch_device)
    root = data_root or default_data_root()
    ours_data, _ = load_split("mnist", "train", root, device=torch_device, log=log)
    _check_batch(batch_size, len(ours_data))
    z, y = ours_data.sample(batch_size)
    model = new_model(UNetConfig(), 0).to(torch_device)
    flops = training_flops(model, (z, torch.rand(batch_size, device=torch_device), y))
    typer.echo(
        f"training at batch {batch_size}, default U-Net, {torch_device}, {torch.get_num_threads()} threads, "
        f"{flops / batch_size / 1e9:.2f} GFLOP per image (forward + backward); "
        f"median of {repeats}, variants in turns"
    )
    if not native_bf16(torch_device):
        typer.echo("  (no native bf16 on this device: the bf16 variant is left out)")
    sampler = LabSampler(DATASETS["mnist"], root)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    lab = "lab: PIL sampler, its loop"
    steps = {lab: lambda: lab_train_step(model, optimizer, sampler, batch_size, 0.1)}
    for name, extra in _our_variants(torch_device, compile).items():
        config = TrainConfig(batch_size=batch_size, **extra)
        steps[name] = CFGTrainer(new_model(UNetConfig(), 0), ours_data, config).train_step
    peaks = PeakMemory(torch_device)
    synced = {name: _synced(step, torch_device) for name, step in steps.items()}
    seconds = interleaved_medians(synced, repeats, warmup=2 if compile else 1, peaks=peaks)
    for name, s in seconds.items():
        typer.echo(
            f"  {name:28s} {batch_size / s:9.1f} img/s  {flops / s / 1e9:8.1f} GFLOP/s  "
            f"{seconds[lab] / s:5.2f}x  peak {peaks.describe(name)}"
        )


def _solver_steps(text: str) -> list[tuple[str, int]]:
    """``"midpoint:2,heun:8"`` → ``[("midpoint", 2), ("heun", 8)]``; a bad item is a usage error."""
    pairs = []
    for item in filter(None, text.split(",")):
        solver, _, steps = item.strip().partition(":")
        try:  # ASCII digits only: str.isdigit and int also take "２" (and then sample for minutes)
            count = check_steps(whole_number(steps))
        except ValueError:
            count = None
        if solver not in SOLVERS or count is None:
            raise typer.BadParameter(
                f"--fast wants solver:steps items ({', '.join(SOLVERS)}; steps 1 to "
                f"{SOLVER_STEPS.high:,}), not {item[:40]!r}"
            )
        pairs.append((solver, count))
    return pairs


@app.command("sample")
def sample_speed(
    checkpoint: Path | None = typer.Option(None, help="Weights to sample (default: a fresh default U-Net)."),
    w: float = typer.Option(3.0, parser=number(GUIDANCE), help="Guidance scale."),
    repeats: int = typer.Option(
        1, parser=whole(REPEATS), help="Timed runs per variant, in turns; the median is reported."
    ),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    fast: str = typer.Option(
        "", help="More of ours on the uniform grid with CFG, solver:steps,... (e.g. midpoint:8,euler:20)."
    ),
) -> None:
    """Sampling 110 images (digits 0-9 and null, 10 each): the lab's sampler against ours, with the
    lab and fast presets (cfg-tui sample --preset) and any --fast cells."""
    import torch

    from core.bench import PeakMemory, forward_flops, interleaved_medians
    from core.checkpoint import load_checkpoint
    from core.runs import checkpoint_file
    from core.sampling import SAMPLERS, Sampler
    from core.trainer import new_model

    torch_device = resolve_device(device)
    extra = [Sampler(solver=solver, steps=steps) for solver, steps in _solver_steps(fast)] if fast else []
    weights = checkpoint_file(checkpoint) if checkpoint is not None else None
    if weights is None:
        model = new_model(UNetConfig(), 0).to(torch_device, memory_format=torch.channels_last).eval()
    else:
        model = load_checkpoint(weights, torch_device)[0]  # channels_last, as ours
    lab_model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)  # the lab's NCHW model
    labels = torch.arange(11).repeat_interleave(10)
    n = len(labels)
    probe = (torch.randn(n, 1, 32, 32), torch.rand(n), labels)
    flops_per_row = forward_flops(model, tuple(x.to(torch_device) for x in probe)) / n
    typer.echo(
        f"sampling {n} images at w = {w:g}, {torch_device}, {torch.get_num_threads()} threads, "
        f"{flops_per_row / 1e9:.3f} GFLOP per image per network evaluation; median of {repeats}"
    )
    variants = {"lab: Euler 99, 2 calls/step": _LabVariant(lab_model, labels, w)}
    for name, sampler in (("lab", SAMPLERS["lab"]), ("fast", SAMPLERS["fast"])):
        variants[f"ours: --preset {name}"] = _OurVariant(model, labels, w, sampler, weights)
    for sampler in extra:
        variants[f"ours: {sampler.solver} {sampler.steps}"] = _OurVariant(model, labels, w, sampler, None)
    peaks = PeakMemory(torch_device)
    for name, variant in variants.items():
        peaks.measure(name, variant.warm_up)
    fns = {name: _synced(variant, torch_device) for name, variant in variants.items()}
    seconds = interleaved_medians(fns, repeats, warmup=0)
    lab = next(iter(variants))
    for name, variant in variants.items():
        rate, nfe = n / seconds[name], variant.nfe
        gflops = nfe * n * flops_per_row / seconds[name] / 1e9
        typer.echo(
            f"  {name:28s} {rate:8.2f} img/s  {nfe:6.1f} evaluations/image  "
            f"{gflops:7.1f} GFLOP/s  {seconds[lab] / seconds[name]:6.2f}x  peak {peaks.describe(name)}"
        )
    for name, variant in variants.items():
        if isinstance(variant, _OurVariant):
            typer.echo(f"  {name}: {variant.sampler.describe()}{variant.note}")


class _LabVariant:
    """The lab's loop; warm-up: 2 steps of the same code."""

    def __init__(self, model: torch.nn.Module, labels: torch.Tensor, w: float) -> None:
        self.model, self.labels, self.w = model, labels, w
        self.nfe = 2.0 * 99

    def warm_up(self) -> None:
        from core.bench import lab_sample

        lab_sample(self.model, self.labels, self.w, 3)

    def __call__(self) -> None:
        from core.bench import lab_sample

        lab_sample(self.model, self.labels, self.w)


class _OurVariant:
    """A :class:`Sampler` of ours on its grid (a fitted grid only for a checkpoint's weights: a fresh
    model is timed on the uniform grid, which costs the same); NFE counted in the timed runs."""

    def __init__(
        self, model: UNet, labels: torch.Tensor, w: float, sampler: Sampler, weights: Path | None
    ) -> None:
        from core.guidance import Calls
        from core.sampling import resolve_grid

        self.model, self.labels, self.w, self.sampler = model, labels, w, sampler
        self.note = ""
        if sampler.grid == "fitted" and weights is None:
            self.note = " (timed on the uniform grid: no checkpoint to fit to)"
            sampler = replace(sampler, grid="uniform")
        self.grid = resolve_grid(sampler, model, weights, log=log)
        self.calls = Calls()

    @property
    def nfe(self) -> float:
        return self.calls.nfe

    def warm_up(self) -> None:
        from core.sampling import resolve_grid, sample

        short = replace(self.sampler, steps=min(2, self.sampler.steps), grid="uniform")
        sample(self.model, self.labels, self.w, short, resolve_grid(short, self.model, None))

    def __call__(self) -> None:
        from core.guidance import Calls
        from core.sampling import sample

        self.calls = Calls()
        sample(self.model, self.labels, self.w, self.sampler, self.grid, calls=self.calls)


@app.command("recipe")
def recipe(
    out: Path = typer.Option(..., help="Folder for the snapshots and timings."),
    preset: str = typer.Option("cpu", help=f"The base recipe: {', '.join(PRESETS)}."),
    budget: float | None = typer.Option(
        None,
        parser=number(SECONDS),
        help="Seconds of training per recipe (default: the base preset's steps at its speed).",
    ),
    fractions: str = typer.Option("0.333,0.667,1", help="Fractions of the budget to snapshot at."),
    only: str | None = typer.Option(None, help="Train only these variants (comma-separated names)."),
    threads: int | None = typer.Option(
        None, parser=whole(THREADS), help="Torch threads (1: CPU time = wall time)."
    ),
    report: bool = typer.Option(False, "--report", help="Print the measured snapshots of --out instead."),
    data_root: Path | None = DataRoot,
) -> None:
    """The training-recipe ablation: the base preset against each trick alone and all together, for
    the same time budget (counted in each recipe's own timed steps, in CPU seconds), with weight
    snapshots to measure with ``cfg-tui eval --checkpoint``."""
    import torch

    from core.ablation import Variant, collect, default_variants, pooled, seconds_per_step, train_variant
    from core.data import load_split

    if preset not in PRESETS:
        raise typer.BadParameter(f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
    if report:
        _print_ablation(collect(out))
        return
    base = PRESETS[preset]
    points = parse_floats("--fractions", fractions)
    if any(not 0 < point <= 1 for point in points):
        raise typer.BadParameter(f"--fractions must each lie in (0, 1], not {fractions[:60]}")
    check_folder("--out", out)
    variants = default_variants()
    if only is not None:
        wanted = set(only.split(","))
        unknown = wanted - {v.name for v in variants}
        if unknown:
            raise typer.BadParameter(f"unknown variants: {', '.join(sorted(unknown))}")
        variants = [v for v in variants if v.name in wanted]
    if threads:
        torch.set_num_threads(threads)
    data, _ = load_split("mnist", "train", data_root, log=log)
    timings_file = out / "timings.json"
    timed = [Variant(preset, {}), Variant(f"{preset} + EMA", {"ema_decay": 0.999}), *default_variants()]
    if timings_file.exists():  # the variants are timed once, together, whichever of them train now
        measured = json.loads(timings_file.read_text())
        budget, timings = measured["budget"], measured["seconds_per_step"]
    else:
        timings = pooled(seconds_per_step(base, timed, data), base, timed)
        budget = budget or base.train.steps * timings[preset]
        with writing("--out", timings_file):
            out.mkdir(parents=True, exist_ok=True)
            record = {"budget": budget, "seconds_per_step": timings}
            atomic_write_text(timings_file, json.dumps(record, indent=1))
    log(f"{torch.get_num_threads()} threads; budget {budget:.0f} s; seconds per step: "
        + ", ".join(f"{name} {s * 1e3:.0f} ms" for name, s in timings.items()))  # fmt: skip
    for variant in variants:
        train_variant(base, variant, data, budget, timings[variant.name], points, out, log=log)


def _print_ablation(rows: list[dict]) -> None:
    """One line per snapshot: time (share of the budget, CPU seconds), step, w = 3 and the best w."""
    from core.ablation import at_guidance, best

    typer.echo(f"{'variant':16s} {'weights':10s} {'time':>5s} {'cpu s':>6s} {'step':>5s}   "
               f"{'FD w=3':>12s} {'acc':>5s}   {'best w':>6s} {'FD':>12s} {'acc':>5s}")  # fmt: skip
    for r in rows:
        three, top = at_guidance(r["evals"], 3.0), best(r["evals"])
        fd3 = f"{three['frechet']:.1f}±{three['frechet_spread']:.1f}" if three else "-"
        acc3 = f"{three['accuracy']:.3f}" if three else "-"
        fd_top = f"{top['frechet']:.1f}±{top['frechet_spread']:.1f}"
        typer.echo(
            f"{r['variant']:16s} {r['weights']:10s} {r['share']:5.2f} {r['seconds']:6.0f} {r['step']:5d}   "
            f"{fd3:>12s} {acc3:>5s}   {top['guidance']:6g} {fd_top:>12s} {top['accuracy']:.3f}"
        )
