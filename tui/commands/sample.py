"""``cfg-tui sample``: guided samples from a checkpoint as a PNG grid, an .npz, or terminal art."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from core.choices import SOLVERS
from core.configs import NOISE, PER_CLASS, SEEDS, SOLVER_STEPS, STEP
from core.files import writing
from core.images import PAD, grid_figure, guidance_title, mosaic, row_names, save_png, save_samples_npz
from core.runs import checkpoint_file, snapshot_file
from tui import defaults
from tui.commands.common import (
    GUIDE_HELP,
    PRESET_HELP,
    GridOption,
    ShiftOption,
    check_sampling,
    check_writable,
    log,
    number,
    parse_guidance,
    parse_labels,
    sampler_options,
    whole,
)
from tui.format import png_record

# torch and the modules that sample are imported in the command itself: --help must not wait for them.
if TYPE_CHECKING:
    import torch

    from core.sampling import Sampler
    from core.unet import UNet


def sample(
    checkpoint: Path | None = typer.Option(
        None, help="A checkpoint file or a run directory (default: bundled)."
    ),
    step: int | None = typer.Option(
        None,
        parser=whole(STEP),
        help="Sample the run's snapshot of this step (checkpoints/step-NNNNNN.safetensors).",
    ),
    digits: str = typer.Option(
        defaults.DIGITS,
        help=f"Rows: digits and ranges, {defaults.NULL_NAME} for the unconditional row, e.g. 3,5,null.",
    ),
    guidance: str = typer.Option(defaults.GUIDANCE, help="Guidance scales w, one panel each, e.g. 1,3,5."),
    per_class: int | None = typer.Option(
        None,
        parser=whole(PER_CLASS),
        help=f"Samples {defaults.PER_CLASS_LABEL} (default: {defaults.PER_CLASS}; fewer when only printing "
        "to a terminal too narrow for them).",
        show_default=False,
    ),
    preset: str = typer.Option(defaults.SAMPLER_PRESET, "--preset", help=PRESET_HELP),
    steps: int | None = typer.Option(
        None, parser=whole(SOLVER_STEPS), help="Solver steps (default: the preset's)."
    ),
    solver: str | None = typer.Option(None, help=f"{', '.join(SOLVERS)} (default: the preset's)."),
    grid: str | None = GridOption,
    shift: float | None = ShiftOption,
    guide: str | None = typer.Option(None, help=GUIDE_HELP),
    noise: float = typer.Option(1.0, parser=number(NOISE), help="Noise level of the sde solver."),
    seed: int = typer.Option(defaults.SEED, parser=whole(SEEDS), help="Seed of the initial noise."),
    out: Path | None = typer.Option(None, help="Write the labelled grid here as PNG."),
    npz: Path | None = typer.Option(None, help="Write images (N, 1, 32, 32) in [-1, 1], labels and w here."),
    show: bool = typer.Option(False, "--show", help="Print the grid in the terminal (see --graphics)."),
    graphics: str = typer.Option(
        "auto",
        help="How --show draws: auto (what the terminal supports; $CFG_TUI_GRAPHICS overrides), "
        "kitty, sixel or halfblock.",
    ),
    ascii_art: bool = typer.Option(False, "--ascii", help="Print the grid as plain characters."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
) -> None:
    """Generate digits with guidance (the fast preset by default; --preset lab for the lab's Euler × 99)."""
    import torch

    from core.checkpoint import load_checkpoint
    from core.sampling import resolve_grid, with_guide_models
    from core.settings import resolve_device
    from tui.graphics import parse_mode

    sampler = sampler_options(preset, solver, steps, grid, shift, guide, noise)
    scales = parse_guidance("--guidance", guidance)
    try:
        mode = parse_mode(graphics)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--graphics") from None
    for option, path in (("--out", out), ("--npz", npz)):
        check_writable(option, path)
    if out is not None and npz is not None and out.resolve() == npz.resolve():
        raise typer.BadParameter("--out and --npz name the same file; one would replace the other")
    torch_device = resolve_device(device)
    weights = checkpoint_file(checkpoint) if step is None else _snapshot(checkpoint, step)
    model, _ = load_checkpoint(weights, torch_device)
    labels = torch.tensor(parse_labels(digits, model.config.num_classes))  # before fitting a grid
    (sampler,) = with_guide_models([sampler], weights, torch_device)
    time_grid = resolve_grid(sampler, model, weights, log=log)
    rows = row_names(labels.tolist(), model.config.null_label)
    if per_class is None:
        fit = out is None and npz is None  # only printing: as many as the terminal shows side by side
        per_class = _columns_that_fit(max(map(len, rows)) + 1) if fit else defaults.PER_CLASS
    batch = labels.repeat_interleave(per_class)
    check_sampling(model.config, len(batch), torch_device.type)
    log(f"{sampler.describe()}; {len(batch)} images per panel")
    panels = _sample_panels(model, batch, scales, sampler, time_grid, seed, _progress_console())
    if out is not None:
        figure = grid_figure([(guidance_title(w), images) for w, images in panels], rows)
        record = png_record(weights, rows, scales, per_class, seed, sampler)
        with writing("--out", out):
            typer.echo(f"wrote {save_png(figure, out, record)}", err=True)
    if npz is not None:
        arrays = [(w, images.numpy()) for w, images in panels]
        with writing("--npz", npz):
            typer.echo(f"wrote {save_samples_npz(npz, arrays, batch.numpy())}", err=True)
    if show or ascii_art or (out is None and npz is None):
        _print(panels, rows, per_class, "ascii" if ascii_art else mode)


def _snapshot(run: Path | None, step: int) -> Path:
    if run is None or not run.is_dir():
        raise typer.BadParameter("--step needs --checkpoint to name a run folder")
    return snapshot_file(run, step)


def _progress_console() -> Console | None:
    """Where the progress bar goes: stderr when it is a terminal; None (no bar) when it is a file or a
    pipe, where a bar redrawn in place would be noise in a log."""
    return Console(stderr=True) if sys.stderr.isatty() else None


def _sample_panels(
    model: UNet,
    labels: torch.Tensor,
    scales: tuple[float, ...],
    sampler: Sampler,
    grid: torch.Tensor,
    seed: int,
    console: Console | None,
) -> list[tuple[float, torch.Tensor]]:
    """One panel of images per guidance scale, with a progress bar of the solver steps of all the
    panels on ``console`` when there is one. The bar is transient: the art printed next on the same
    terminal starts on a clean line."""
    if console is None:
        return [(w, _generate(model, labels, w, sampler, grid, seed)) for w in scales]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TaskProgressColumn(),
        TimeRemainingColumn(),
    )
    panels = []
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("sampling", total=len(scales) * sampler.steps)
        for k, w in enumerate(scales):
            done = k * sampler.steps
            progress.update(task, description=f"{guidance_title(w)} ({k + 1}/{len(scales)})", completed=done)

            def advance(i: int, t: torch.Tensor, x: torch.Tensor, done: int = done) -> None:
                progress.update(task, completed=done + i)  # i: grid points passed, 0 … steps

            panels.append((w, _generate(model, labels, w, sampler, grid, seed, advance)))
    return panels


def _generate(
    model: UNet,
    labels: torch.Tensor,
    w: float,
    sampler: Sampler,
    grid: torch.Tensor,
    seed: int,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    from core.sampling import sample as sample_images

    images = sample_images(model, labels, w, sampler, grid, seed=seed, callback=callback)
    return images.clamp(-1, 1).cpu()


def _print(panels: list[tuple[float, torch.Tensor]], rows: list[str], per_class: int, mode: str) -> None:
    """The grid on stdout: plain characters (``ascii``), else as tui.graphics draws it for ``mode``
    (half-blocks, or real pixels by kitty's protocol or sixel where the terminal has them)."""
    from core.images import to_uint8
    from tui.art import art_console, fit_tiles, labelled_text, shade_text
    from tui.graphics import write_grid

    if mode != "ascii":
        uint8_panels = [(guidance_title(w), to_uint8(images)[..., 0]) for w, images in panels]
        write_grid(uint8_panels, rows, per_class, mode)
        return
    console = art_console(plain=True)
    label_width = max(map(len, rows)) + 1
    for w, images in panels:
        tiles = fit_tiles(
            to_uint8(images)[..., 0], per_class, shutil.get_terminal_size().columns - label_width
        )
        lines = shade_text(mosaic(tiles, cols=per_class))
        console.print(
            labelled_text(lines, guidance_title(w), rows, tiles.shape[-1] + PAD), end="", soft_wrap=True
        )


def _columns_that_fit(label_width: int) -> int:
    from tui.art import MIN_TILE

    free = shutil.get_terminal_size().columns - label_width - PAD
    return max(1, min(defaults.PER_CLASS, free // (MIN_TILE + PAD)))
