"""``cfg-tui bench``: our loops against straightforward implementations of the lab's, in one process."""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from core.bench import LabSampler, median_seconds
from core.data import DATASETS, default_data_root, load_split
from core.trainer import CFGTrainer, TrainConfig, new_model
from core.unet import UNetConfig
from tui.commands.data import DataRoot, log

app = typer.Typer(help="Benchmarks against the lab's own loops, run side by side.", no_args_is_help=True)


@app.command("data")
def data_share(
    batch_size: int = typer.Option(250, min=1, help="Images per batch (the lab's is 250)."),
    repeats: int = typer.Option(3, min=1, help="Timed repeats; the median is reported."),
    dataset: str = typer.Option("mnist", help=", ".join(DATASETS)),
    data_root: Path | None = DataRoot,
) -> None:
    """The data share of one training step: the lab's item-by-item PIL sampler versus ours."""
    root = data_root or default_data_root()
    ours, _ = load_split(dataset, "train", root, log=log)
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
