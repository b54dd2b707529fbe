"""``cfg-tui sample``: guided samples from a checkpoint as a PNG grid, an .npz, or terminal art."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import typer

from core.checkpoint import load_checkpoint
from core.images import (
    PAD,
    grid_figure,
    guidance_title,
    mosaic,
    row_names,
    save_png,
    save_samples_npz,
    to_uint8,
)
from core.runs import checkpoint_file, snapshot_file
from core.sampling import Sampler, resolve_grid, with_guide_models
from core.sampling import sample as sample_images
from core.settings import resolve_device
from core.solvers import SOLVERS
from core.unet import UNet
from tui.art import MIN_TILE, art_console, fit_tiles, half_block_lines, labelled_text, shade_text
from tui.commands.common import (
    GUIDE_HELP,
    GridOption,
    PresetOption,
    ShiftOption,
    check_writable,
    log,
    parse_floats,
    parse_labels,
    sampler_options,
)
from tui.format import png_record, sample_command


def sample(
    checkpoint: Path | None = typer.Option(
        None, help="A checkpoint file or a run directory (default: bundled)."
    ),
    step: int | None = typer.Option(
        None, min=0, help="Sample the run's snapshot of this step (checkpoints/step-NNNNNN.safetensors)."
    ),
    digits: str = typer.Option("0-9", help="Rows: digits and ranges, null for unconditional, e.g. 3,5,null."),
    guidance: str = typer.Option("3", help="Guidance scales w, one panel each, e.g. 1,3,5."),
    per_class: int | None = typer.Option(
        None, min=1, help="Samples per row (default: 8, or what fits the terminal when only printing)."
    ),
    preset: str = PresetOption,
    steps: int | None = typer.Option(None, min=1, help="Solver steps (default: the preset's)."),
    solver: str | None = typer.Option(None, help=f"{', '.join(SOLVERS)} (default: the preset's)."),
    grid: str | None = GridOption,
    shift: float | None = ShiftOption,
    guide: str | None = typer.Option(None, help=GUIDE_HELP),
    noise: float = typer.Option(1.0, min=0.0, help="Noise level of the sde solver."),
    seed: int = typer.Option(0, help="Seed of the initial noise."),
    out: Path | None = typer.Option(None, help="Write the labelled grid here as PNG."),
    npz: Path | None = typer.Option(None, help="Write images (N, 1, 32, 32) in [-1, 1], labels and w here."),
    show: bool = typer.Option(False, "--show", help="Print the grid as half-block art."),
    ascii_art: bool = typer.Option(False, "--ascii", help="Print the grid as plain characters."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
) -> None:
    """Generate digits with guidance (the lab's sampler by default; --preset fast for a few steps)."""
    sampler = sampler_options(preset, solver, steps, grid, shift, guide, noise)
    scales = parse_floats("--guidance", guidance)
    for option, path in (("--out", out), ("--npz", npz)):
        check_writable(option, path)
    torch_device = resolve_device(device)
    weights = checkpoint_file(checkpoint) if step is None else _snapshot(checkpoint, step)
    model, _ = load_checkpoint(weights, torch_device)
    (sampler,) = with_guide_models([sampler], weights, torch_device)
    time_grid = resolve_grid(sampler, model, weights, log=log)
    labels = torch.tensor(parse_labels(digits, model.config.num_classes))
    rows = row_names(labels.tolist(), model.config.null_label)
    if per_class is None:
        per_class = 8 if out or npz else _columns_that_fit(max(map(len, rows)) + 1)
    batch = labels.repeat_interleave(per_class)
    log(f"{sampler.describe()}; {len(batch)} images per panel")
    panels = [(w, _generate(model, batch, w, sampler, time_grid, seed)) for w in scales]
    if out is not None:
        figure = grid_figure([(guidance_title(w), images) for w, images in panels], rows)
        command = sample_command(weights, rows, scales, per_class, seed, sampler)
        typer.echo(f"wrote {save_png(figure, out, png_record(command))}", err=True)
    if npz is not None:
        arrays = [(w, images.numpy()) for w, images in panels]
        typer.echo(f"wrote {save_samples_npz(npz, arrays, batch.numpy())}", err=True)
    if show or ascii_art or (out is None and npz is None):
        _print(panels, rows, per_class, ascii_art)


def _snapshot(run: Path | None, step: int) -> Path:
    if run is None or not run.is_dir():
        raise typer.BadParameter("--step needs --checkpoint to name a run folder")
    return snapshot_file(run, step)


def _generate(
    model: UNet, labels: torch.Tensor, w: float, sampler: Sampler, grid: torch.Tensor, seed: int
) -> torch.Tensor:
    return sample_images(model, labels, w, sampler, grid, seed=seed).clamp(-1, 1).cpu()


def _print(
    panels: list[tuple[float, torch.Tensor]], rows: list[str], per_class: int, ascii_art: bool
) -> None:
    console = art_console(ascii_art)
    label_width = max(map(len, rows)) + 1
    for w, images in panels:
        tiles = fit_tiles(
            to_uint8(images)[..., 0], per_class, shutil.get_terminal_size().columns - label_width
        )
        pixels = mosaic(tiles, cols=per_class)
        lines = shade_text(pixels) if ascii_art else half_block_lines(pixels)
        console.print(
            labelled_text(lines, guidance_title(w), rows, tiles.shape[-1] + PAD), end="", soft_wrap=True
        )


def _columns_that_fit(label_width: int) -> int:
    free = shutil.get_terminal_size().columns - label_width - PAD
    return max(1, min(8, free // (MIN_TILE + PAD)))
