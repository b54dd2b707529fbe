"""``cfg-tui path``: the lab's figure of the conditional path x_t = α_t z + β_t ε at several t."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from core.configs import PANEL_SIDE, PANELS, SEEDS
from core.data import DATASETS
from core.files import writing
from core.images import PAD, grid_figure, save_png, tile
from core.schedules import SCHEDULES
from tui.commands.common import DataRoot, check_writable, log, parse_floats, whole


def path(
    times: str = typer.Option("0,0.25,0.5,0.75,1", help="Times t in [0, 1], one panel each."),
    rows: int = typer.Option(3, parser=whole(PANEL_SIDE), help="Rows of images per panel."),
    cols: int = typer.Option(3, parser=whole(PANEL_SIDE), help="Columns of images per panel."),
    schedule: str = typer.Option("linear", help=f"{', '.join(SCHEDULES)}."),
    dataset: str = typer.Option("mnist", help=", ".join(DATASETS)),
    data_root: Path | None = DataRoot,
    seed: int = typer.Option(0, parser=whole(SEEDS), help="Seed of the images drawn and of the noise."),
    out: Path | None = typer.Option(None, help="Write the figure here as PNG."),
    show: bool = typer.Option(False, "--show", help="Print the panels as half-block art."),
) -> None:
    """Draw data z and show x_t ~ p_t(·|z) from noise (t = 0) to data (t = 1)."""
    import torch  # here, not above: --help must not wait for it

    from core.data import load_split
    from core.path import GaussianPath
    from tui.art import art_console, half_block_lines, labelled_text

    ts = parse_floats("--times", times)
    if any(not 0 <= t <= 1 for t in ts):
        raise typer.BadParameter(f"--times must lie in [0, 1], got {times[:60]}")
    if PANELS.problem(len(ts)):
        raise typer.BadParameter(f"--times: the number of times {PANELS.problem(len(ts))}")
    if schedule not in SCHEDULES:
        raise typer.BadParameter(f"--schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    check_writable("--out", out)
    data, _ = load_split(dataset, "train", data_root, log=log)
    if rows * cols > len(data):
        raise typer.BadParameter(f"--rows × --cols: {rows * cols} images; the data hold {len(data)}")
    generator = torch.Generator().manual_seed(seed)
    z, _ = data.sample(rows * cols, generator)
    gaussian = GaussianPath.named(schedule)
    eps = torch.randn(z.shape, generator=generator)
    panels = []
    for t in ts:
        tt = torch.full((len(z), 1, 1, 1), t)
        panels.append((f"t = {t:g}", gaussian.alpha.value(tt) * z + gaussian.beta.value(tt) * eps))
    if out is not None:
        with writing("--out", out):
            typer.echo(f"wrote {save_png(grid_figure(panels, [''] * rows), out)}", err=True)
    if show or out is None:
        console = art_console()
        for title, images in panels:
            pixels = np.asarray(tile(images.clamp(-1, 1), cols=cols))
            art = labelled_text(half_block_lines(pixels), title, [""] * rows, images.shape[-2] + PAD)
            console.print(art, end="", soft_wrap=True)
