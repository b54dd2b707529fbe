"""``cfg-tui eval`` and ``cfg-tui sweep``: sample quality in numbers, from the project's MNIST classifier."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from core.assets import CLASSIFIER
from core.checkpoint import load_checkpoint
from core.choices import FEATURE_LAYERS, GRIDS, SOLVERS
from core.configs import EPOCHS, MEASURED_PER_CLASS, SEEDS, SOLVER_STEPS
from core.files import atomic_write_text, check_input_file, output_folder, writing
from core.images import line_chart, load_samples_npz, save_png
from core.runs import checkpoint_file
from core.settings import resolve_device
from tui.commands.common import (
    GUIDE_HELP,
    DataRoot,
    GridOption,
    PresetOption,
    ShiftOption,
    check_folder,
    check_sampling,
    check_writable,
    log,
    parse_feature_layer,
    parse_grids,
    parse_guidance,
    parse_guide,
    parse_seeds,
    parse_solvers,
    parse_steps,
    sampler_cells,
    sampler_options,
    whole,
    wide_console,
    with_method,
)
from tui.format import EVAL_COLUMNS, eval_cells, with_spread

# The evaluation's modules load torch: imported in the commands, so that --help does not wait for them.
if TYPE_CHECKING:
    import torch

    from core.guidance import Guidance
    from core.metrics import Classifier, Reference
    from core.sampling import Sampler
    from core.unet import UNet

app = typer.Typer(help="Measure sample quality: accuracy, Fréchet distance, diversity.")


def rows_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in EVAL_COLUMNS:
        table.add_column(column, justify="left" if column == "name" else "right", no_wrap=column == "name")
    for row in rows:
        table.add_row(*eval_cells(row))
    return table


def _classifier_and_reference(
    classifier_path: Path, device: torch.device, data_root: Path | None, feature_layer: str | None = None
) -> tuple[Classifier, Reference]:
    """The classifier (measuring in ``feature_layer`` if given, else its own) and the embedded test set."""
    from core.evaluation import load_yardstick

    return load_yardstick(classifier_path, device, data_root, feature_layer, log=log)


GuideOption = typer.Option(
    None, "--guide", help="Guidance method (repeat for several, one row each). " + GUIDE_HELP
)


def parse_guides(specs: list[str] | None, default: Guidance) -> list[Guidance]:
    """The methods of repeated ``--guide`` options, or ``default`` when none is given."""
    return [parse_guide("--guide", spec) for spec in specs] if specs else [default]


def _model_and_cells(
    checkpoint: Path | None, device: torch.device, cells: list[Sampler]
) -> tuple[UNet, Callable[[Sampler], torch.Tensor], list[Sampler]]:
    """The model, its grid resolver (fitted grids stored beside its weights) and the cells with
    auto's guide model loaded."""
    from core.sampling import resolve_grid, with_guide_models

    weights = checkpoint_file(checkpoint)
    model, _ = load_checkpoint(weights, device)
    grid_of = lambda sampler: resolve_grid(sampler, model, weights, log=log)  # noqa: E731
    return model, grid_of, with_guide_models(cells, weights, device)


def _check_batch(checkpoint: Path | None, per_class: int, device: torch.device) -> None:
    """Refuse, before anything is loaded or sampled, ``per_class`` samples of each of the model's
    classes that would not fit in memory at once (its configuration is read from the file's header)."""
    from core.checkpoint import read_config

    config = read_config(checkpoint_file(checkpoint))
    check_sampling(config, per_class * config.num_classes, device.type)


def _report(rows: list[dict], title: str, as_json: bool, out: Path | None) -> None:
    """The rows as a table (or JSON on stdout with ``--json``), and as a JSON file with ``--out``."""
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        wide_console().print(rows_table(rows, title))
    if out is not None:
        with writing("--out", out):
            atomic_write_text(out, json.dumps(rows, indent=2) + "\n")
        log(f"wrote {out}")


JsonFlag = typer.Option(False, "--json", help="Print the rows as JSON on stdout instead of a table.")
OutOption = typer.Option(None, "--out", help="Also write the rows here as JSON.")


@app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    checkpoint: Path | None = typer.Option(None, help="A checkpoint file or run (default: bundled)."),
    samples: Path | None = typer.Option(
        None, help="Score these samples instead (.npz of cfg-tui sample --npz: images and labels)."
    ),
    guidance: str = typer.Option("1,3,5", help="Guidance scales, one row each."),
    per_class: int = typer.Option(100, parser=whole(MEASURED_PER_CLASS), help="Samples per class."),
    preset: str = PresetOption,
    solver: str | None = typer.Option(None, help=f"{', '.join(SOLVERS)} (default: the preset's)."),
    steps: int | None = typer.Option(
        None, parser=whole(SOLVER_STEPS), help="Solver steps (default: the preset's)."
    ),
    grid: str | None = GridOption,
    shift: float | None = ShiftOption,
    guide: list[str] | None = GuideOption,
    seeds: str = typer.Option("0", help="Seeds of the initial noise, one row each, e.g. 0,1."),
    classifier: Path = typer.Option(CLASSIFIER, help="The MNIST classifier."),
    references: bool = typer.Option(True, help="Also rows for real training images and for noise."),
    as_json: bool = JsonFlag,
    out: Path | None = OutOption,
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    data_root: Path | None = DataRoot,
) -> None:
    """Generate per_class samples of each digit per guidance scale (or read them from --samples) and
    measure them against the 10,000 MNIST test images: accuracy, Fréchet and kernel distance,
    precision and recall, each with its spread (± a standard error), and n beside them."""
    if ctx.invoked_subcommand is not None:
        return
    from core.data import load_split
    from core.evaluation import reference_rows, score, sweep

    base = sampler_options(preset, solver, steps, grid, shift)
    cells = [with_method(base, method) for method in parse_guides(guide, base.guide)]
    scales = parse_guidance("--guidance", guidance)
    seed_list = parse_seeds("--seeds", seeds)
    check_writable("--out", out)
    torch_device = resolve_device(device)
    if samples is None:
        _check_batch(checkpoint, per_class, torch_device)
    if samples is not None:
        check_input_file(samples, "--samples")
        images, labels = load_samples_npz(samples)
        digits = labels < 10
        if not digits.all():
            log(f"{int((~digits).sum())} null samples left out: they have no class to be scored against")
    classifier_model, reference = _classifier_and_reference(classifier, torch_device, data_root)
    rows = []
    if references:
        train, _ = load_split("mnist", "train", data_root, device=torch_device, log=log)
        rows += reference_rows(classifier_model, reference, train, per_class)
    if samples is not None:
        rows.append(score(classifier_model, reference, samples.name, images[digits], labels[digits]))
    else:
        model, grid_of, cells = _model_and_cells(checkpoint, torch_device, cells)
        for seed in seed_list:
            rows += sweep(model, classifier_model, reference, scales, cells, per_class, seed, grid_of=grid_of)
    _report(rows, "against the 10,000 MNIST test images; ± is one standard error", as_json, out)


@app.command("check")
def check_command(
    per_class: int = typer.Option(
        100, parser=whole(MEASURED_PER_CLASS), help="Images per class in every row."
    ),
    checkpoint: Path | None = typer.Option(None, help="The model of the generated rows (default: bundled)."),
    generated: bool = typer.Option(True, help="Also rows of samples at w = 3, Euler 2/4/8/99."),
    classifier: Path = typer.Option(CLASSIFIER, help="The MNIST classifier."),
    feature_layer: str | None = typer.Option(
        None, help=f"Measure in these features ({', '.join(FEATURE_LAYERS)}; default: the classifier's)."
    ),
    as_json: bool = JsonFlag,
    out: Path | None = OutOption,
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    data_root: Path | None = DataRoot,
) -> None:
    """Check the yardstick: real training images (the floor), the same under blur, noise, quantisation
    and a shift, and generated sets; each measure must worsen with each damage's strength, and its
    mildest damage must sit 3 spreads above the floor."""
    from core.data import load_split
    from core.evaluation import check_rows

    check_writable("--out", out)
    if feature_layer is not None:
        parse_feature_layer("--feature-layer", feature_layer)
    torch_device = resolve_device(device)
    if generated:
        _check_batch(checkpoint, per_class, torch_device)
    classifier_model, reference = _classifier_and_reference(
        classifier, torch_device, data_root, feature_layer
    )
    train, _ = load_split("mnist", "train", data_root, device=torch_device, log=log)
    model = load_checkpoint(checkpoint_file(checkpoint), torch_device)[0] if generated else None
    rows = check_rows(
        classifier_model, reference, train, per_class, model, on_row=lambda r: log(f"  {r['name']}")
    )
    _report(
        rows, f"eval check, {classifier_model.feature_layer} features; ± is one standard error", as_json, out
    )
    if not as_json:
        wide_console().print(verdict_table(rows))


def verdict_table(rows: list[dict]) -> Table:
    """Per measure and damage: does it worsen with strength, and by how many spreads the mildest
    damage sits above the floor (≥ 3 passes)."""
    from core.damage import DAMAGES
    from core.evaluation import MEASURES, judge

    table = Table("measure", *DAMAGES, "passes", title="does each measure see each damage?")
    for measure in MEASURES:
        verdicts = judge(rows, measure)
        cells = [
            f"{'grows' if grows else 'NOT monotone'}, {margin:.1f}σ" for grows, margin in verdicts.values()
        ]
        ok = all(grows and margin >= 3 for grows, margin in verdicts.values())
        table.add_row(measure, *cells, "yes" if ok else "NO")
    return table


@app.command("train-classifier")
def train_classifier_command(
    epochs: int = typer.Option(
        10, parser=whole(EPOCHS), help="Passes over the 60,000 training images (augmented)."
    ),
    feature_layer: str = typer.Option(
        "combined", help=f"Features for the distances: {', '.join(FEATURE_LAYERS)}."
    ),
    out: Path = typer.Option(CLASSIFIER, help="Where to write the classifier."),
    seed: int = typer.Option(0, parser=whole(SEEDS), help="Seed of the weights and the batch order."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    data_root: Path | None = DataRoot,
) -> None:
    """Train the small CNN of cfg-tui eval on MNIST (the lab's preprocessing) and report test accuracy."""
    from core.data import load_split
    from core.metrics import accuracy, save_classifier, train_classifier

    check_writable("--out", out)
    parse_feature_layer("--feature-layer", feature_layer)
    torch_device = resolve_device(device)
    train, _ = load_split("mnist", "train", data_root, device=torch_device, log=log)
    test, _ = load_split("mnist", "test", data_root, device=torch_device, log=log)
    start = time.perf_counter()

    def progress(epoch: int, step: int, loss: float) -> None:
        typer.echo(f"epoch {epoch + 1}/{epochs}  step {step}  loss {loss:.4f}", err=True)

    classifier = train_classifier(
        train, epochs=epochs, seed=seed, feature_layer=feature_layer, callback=progress
    )
    test_accuracy = accuracy(classifier, test)
    minutes = (time.perf_counter() - start) / 60
    meta = {"test_accuracy": f"{test_accuracy:.4f}", "epochs": str(epochs), "seed": str(seed),
            "minutes": f"{minutes:.1f}",
            "command": f"cfg-tui eval train-classifier --epochs {epochs} --seed {seed}"}  # fmt: skip
    with writing("--out", out):
        save_classifier(out, classifier, meta)
    typer.echo(f"test accuracy {100 * test_accuracy:.2f} % after {minutes:.1f} min; wrote {out}")


def sweep_command(
    checkpoint: Path | None = typer.Option(None, help="A checkpoint file or run (default: bundled)."),
    guidance: str = typer.Option("0,0.5,1,2,3,5,10", help="Guidance scales."),
    solvers: str = typer.Option("euler,heun,midpoint", help="Solvers."),
    steps: str = typer.Option("2,5,10,20,50,99", help="Step counts."),
    grids: str = typer.Option("uniform", help=f"Time grids, comma-separated: {', '.join(GRIDS)}."),
    guide: list[str] | None = GuideOption,
    per_class: int = typer.Option(
        20, parser=whole(MEASURED_PER_CLASS), help="Samples per class in every cell."
    ),
    seeds: str = typer.Option("0", help="Seeds of the initial noise: each cell once per seed."),
    out_dir: Path = typer.Option(Path("sweep"), help="Folder for sweep.json, sweep.csv and the charts."),
    classifier: Path = typer.Option(CLASSIFIER, help="The MNIST classifier."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    data_root: Path | None = DataRoot,
) -> None:
    """Every w × solver × steps × grid × method cell: quality, NFE and seconds, as JSON, CSV and PNG
    charts, and each cell against the lab's sampler (Euler 99, uniform grid, CFG) at its w."""
    from core.evaluation import sweep, versus
    from core.guidance import CFG

    scales = list(parse_guidance("--guidance", guidance))
    solver_names = parse_solvers("--solvers", solvers)
    step_counts = parse_steps("--steps", steps)
    methods = parse_guides(guide, CFG())
    cells = sampler_cells(solver_names, step_counts, methods, parse_grids("--grids", grids))
    seed_list = parse_seeds("--seeds", seeds)
    check_folder("--out-dir", out_dir)  # made only when there are results to write into it
    torch_device = resolve_device(device)
    _check_batch(checkpoint, per_class, torch_device)
    model, grid_of, cells = _model_and_cells(checkpoint, torch_device, cells)
    classifier_model, reference = _classifier_and_reference(classifier, torch_device, data_root)

    def report(row: dict) -> None:
        typer.echo(
            f"{row['name']:>22}  nfe {row['nfe']:6g}  {row['seconds']:7.1f} s  "
            f"seed {row['seed']}  accuracy {row['accuracy']:.3f}  "
            f"frechet {with_spread(row['frechet'], row['frechet_spread'], 2):>12} (n {row['n']})  "
            f"precision {with_spread(row['precision'], row['precision_spread'], 3)}  "
            f"recall {with_spread(row['recall'], row['recall_spread'], 3)}"
        )

    rows = []
    for seed in seed_list:
        rows += sweep(model, classifier_model, reference, scales, cells, per_class, seed, report, grid_of)
    comparison = versus(rows)
    with output_folder(out_dir, "--out-dir"):  # a folder made here goes again if a write fails
        write_sweep(out_dir, rows)
        if comparison:
            atomic_write_text(out_dir / "versus-euler99.json", json.dumps(comparison, indent=2) + "\n")
    if comparison:
        wide_console().print(versus_table(comparison))
    typer.echo(f"wrote sweep.json, sweep.csv and PNG charts (against w, against NFE) to {out_dir}")


def versus_table(comparison: list[dict]) -> Table:
    """Each cell against Euler 99 at its w: FD (mean over seeds ± its standard error) and the verdict."""
    table = Table("w", "sampler", "frechet", "lab (euler × 99)", "difference", "equal quality?",
                  title="against the lab's sampler (equal: inside the spread and within 5 %)")  # fmt: skip
    for c in comparison:
        ours, lab = c["frechet"], c["reference"]
        fd = with_spread(ours["value"], ours["spread"], 2)
        lab_fd = with_spread(lab["value"], lab["spread"], 2)
        verdict = "yes" if c["equal"] else "no"
        cell = f"{c['solver']} × {c['steps']}, {c['grid']}, {c['guide']}"
        table.add_row(f"{c['guidance']:g}", cell, fd, lab_fd, f"{100 * c['difference']:+.1f} %", verdict)
    return table


def write_sweep(out_dir: Path, rows: list[dict]) -> None:
    from core.evaluation import MEASURES

    atomic_write_text(out_dir / "sweep.json", json.dumps(rows, indent=2) + "\n")
    buffer = io.StringIO()
    fields = [
        "guidance",
        "solver",
        "steps",
        "grid",
        "guide",
        "seed",
        "nfe",
        "seconds",
        "n",
        "accuracy",
        "confidence",
        *(f"{m}{suffix}" for m in MEASURES for suffix in ("", "_spread")),
        "diversity",
    ]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "sweep.csv", buffer.getvalue())
    best_steps = max(r["steps"] for r in rows)
    names = list(dict.fromkeys(map(_series, rows)))
    for metric in ("accuracy", "frechet"):
        series = {
            f"{name} x{best_steps}": [(r["guidance"], r[metric]) for r in rows
                                      if _series(r) == name and r["steps"] == best_steps]
            for name in names
        }  # fmt: skip
        label = "Frechet distance" if metric == "frechet" else "accuracy"
        chart = line_chart(series, f"{label} against guidance w", "w", label)
        save_png(chart, out_dir / f"{metric}-vs-guidance.png")
    for w in dict.fromkeys(r["guidance"] for r in rows):
        series = {
            name: [(r["nfe"], r["frechet"]) for r in rows if _series(r) == name and r["guidance"] == w]
            for name in names
        }
        chart = line_chart(
            series, f"Frechet distance against NFE at w = {w:g}", "NFE", "distance", log_x=True
        )
        save_png(chart, out_dir / f"distance-vs-nfe-w{w:g}.png")


def _series(row: dict) -> str:
    """A chart series: the solver, with the grid and method where they are not the lab's."""
    grid, guide = row.get("grid", "uniform"), row.get("guide", "cfg")
    return " ".join(
        [row["solver"], *([grid] if grid != "uniform" else []), *([guide] if guide != "cfg" else [])]
    )
