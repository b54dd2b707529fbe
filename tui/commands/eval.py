"""``cfg-tui eval`` and ``cfg-tui sweep``: sample quality in numbers, from the project's MNIST classifier."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from core.assets import CLASSIFIER
from core.checkpoint import load_checkpoint
from core.data import load_split
from core.evaluation import reference_rows, sweep
from core.files import atomic_write_text
from core.images import line_chart, save_png
from core.metrics import accuracy, load_classifier, save_classifier, train_classifier
from core.runs import checkpoint_file
from core.settings import resolve_device
from core.solvers import SOLVERS
from tui.commands.common import DataRoot, check_writable, log, parse_floats, parse_solvers, parse_steps
from tui.format import EVAL_COLUMNS, eval_cells, number

app = typer.Typer(help="Measure sample quality: accuracy, Fréchet distance, diversity.")


def rows_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in EVAL_COLUMNS:
        table.add_column(column, justify="left" if column == "name" else "right", no_wrap=column == "name")
    for row in rows:
        table.add_row(*eval_cells(row))
    return table


def _setup(checkpoint: Path | None, classifier_path: Path, device: str, data_root: Path | None):
    torch_device = resolve_device(device)
    model, _ = load_checkpoint(checkpoint_file(checkpoint), torch_device)
    classifier, _ = load_classifier(classifier_path, torch_device)
    real, _ = load_split("mnist", "test", data_root, device=torch_device, log=log)
    return model, classifier, real, torch_device


@app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    checkpoint: Path | None = typer.Option(None, help="A checkpoint file or run (default: bundled)."),
    guidance: str = typer.Option("1,3,5", help="Guidance scales, one row each."),
    per_class: int = typer.Option(100, min=2, help="Samples per digit."),
    solver: str = typer.Option("euler", help=", ".join(SOLVERS)),
    steps: int = typer.Option(99, min=1, help="Solver steps (the lab's: 99)."),
    seed: int = typer.Option(0, help="Seed of the initial noise."),
    classifier: Path = typer.Option(CLASSIFIER, help="The MNIST classifier."),
    references: bool = typer.Option(True, help="Also rows for real training images and for noise."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the rows here as JSON."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    data_root: Path | None = DataRoot,
) -> None:
    """Generate per_class samples of each digit per guidance scale and measure them against the
    10,000 MNIST test images."""
    if ctx.invoked_subcommand is not None:
        return
    solvers = parse_solvers("--solver", solver)
    scales = parse_floats("--guidance", guidance)
    check_writable("--json", json_out)
    model, classifier_model, real, torch_device = _setup(checkpoint, classifier, device, data_root)
    rows = []
    if references:
        train, _ = load_split("mnist", "train", data_root, device=torch_device, log=log)
        rows += reference_rows(classifier_model, real, train, per_class)
    rows += sweep(model, classifier_model, real, scales, solvers, [steps], per_class, seed)
    Console().print(rows_table(rows, f"{per_class} samples per digit against the MNIST test set"))
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(rows, indent=2) + "\n")
        typer.echo(f"wrote {json_out}", err=True)


@app.command("train-classifier")
def train_classifier_command(
    epochs: int = typer.Option(3, min=1, help="Passes over the 60,000 training images."),
    out: Path = typer.Option(CLASSIFIER, help="Where to write the classifier."),
    seed: int = typer.Option(0, help="Seed of the weights and the batch order."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    data_root: Path | None = DataRoot,
) -> None:
    """Train the small CNN of cfg-tui eval on MNIST (the lab's preprocessing) and report test accuracy."""
    check_writable("--out", out)
    torch_device = resolve_device(device)
    train, _ = load_split("mnist", "train", data_root, device=torch_device, log=log)
    test, _ = load_split("mnist", "test", data_root, device=torch_device, log=log)
    start = time.perf_counter()

    def progress(epoch: int, step: int, loss: float) -> None:
        typer.echo(f"epoch {epoch + 1}/{epochs}  step {step}  loss {loss:.4f}", err=True)

    classifier = train_classifier(train, epochs=epochs, seed=seed, callback=progress)
    test_accuracy = accuracy(classifier, test)
    minutes = (time.perf_counter() - start) / 60
    meta = {"test_accuracy": f"{test_accuracy:.4f}", "epochs": str(epochs), "seed": str(seed),
            "command": f"cfg-tui eval train-classifier --epochs {epochs} --seed {seed}"}  # fmt: skip
    save_classifier(out, classifier, meta)
    typer.echo(f"test accuracy {100 * test_accuracy:.2f} % after {minutes:.1f} min; wrote {out}")


def sweep_command(
    checkpoint: Path | None = typer.Option(None, help="A checkpoint file or run (default: bundled)."),
    guidance: str = typer.Option("0,0.5,1,2,3,5,10", help="Guidance scales."),
    solvers: str = typer.Option("euler,heun,midpoint", help="Solvers."),
    steps: str = typer.Option("2,5,10,20,50,99", help="Step counts."),
    per_class: int = typer.Option(20, min=2, help="Samples per digit in every cell."),
    out_dir: Path = typer.Option(Path("sweep"), help="Folder for sweep.json, sweep.csv and the charts."),
    classifier: Path = typer.Option(CLASSIFIER, help="The MNIST classifier."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    data_root: Path | None = DataRoot,
) -> None:
    """Every guidance × solver × steps cell: quality, NFE and seconds, as JSON, CSV and PNG charts."""
    scales = list(parse_floats("--guidance", guidance))
    solver_names = parse_solvers("--solvers", solvers)
    step_counts = parse_steps("--steps", steps)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_writable("--out-dir", out_dir / "sweep.json")
    model, classifier_model, real, _ = _setup(checkpoint, classifier, device, data_root)

    def report(row: dict) -> None:
        typer.echo(
            f"{row['name']:>22}  nfe {row['nfe']:4d}  {row['seconds']:7.1f} s  "
            f"accuracy {row['accuracy']:.3f}  frechet {number(row['frechet'], 2):>8}  "
            f"diversity {number(row['diversity'], 3)}"
        )

    rows = sweep(model, classifier_model, real, scales, solver_names, step_counts, per_class, on_row=report)
    write_sweep(out_dir, rows)
    typer.echo(f"wrote sweep.json, sweep.csv and PNG charts (against w, against NFE) to {out_dir}")


def write_sweep(out_dir: Path, rows: list[dict]) -> None:
    atomic_write_text(out_dir / "sweep.json", json.dumps(rows, indent=2) + "\n")
    buffer = io.StringIO()
    fields = [
        "guidance",
        "solver",
        "steps",
        "nfe",
        "seconds",
        "accuracy",
        "confidence",
        "frechet",
        "diversity",
    ]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "sweep.csv", buffer.getvalue())
    best_steps = max(r["steps"] for r in rows)
    for metric in ("accuracy", "frechet"):
        series = {
            f"{solver} x{best_steps}": [(r["guidance"], r[metric]) for r in rows
                                        if r["solver"] == solver and r["steps"] == best_steps]
            for solver in dict.fromkeys(r["solver"] for r in rows)
        }  # fmt: skip
        label = "Frechet distance" if metric == "frechet" else "accuracy"
        chart = line_chart(series, f"{label} against guidance w", "w", label)
        save_png(chart, out_dir / f"{metric}-vs-guidance.png")
    for w in dict.fromkeys(r["guidance"] for r in rows):
        series = {
            solver: [(r["nfe"], r["frechet"]) for r in rows if r["solver"] == solver and r["guidance"] == w]
            for solver in dict.fromkeys(r["solver"] for r in rows)
        }
        chart = line_chart(
            series, f"Frechet distance against NFE at w = {w:g}", "NFE", "distance", log_x=True
        )
        save_png(chart, out_dir / f"distance-vs-nfe-w{w:g}.png")
