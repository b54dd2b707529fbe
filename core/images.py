"""Images from tensors: the lab's figures as PNG, grids of tiles, and samples as .npz.

A figure has one titled panel per guidance scale (or per time t), each a grid with one
row per class and one column per sample, with the class names down the left.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from core.files import atomic_write_bytes

# torch is imported in the two functions that make tensors: the command line imports this module for
# its error and layout constants, and starts without loading torch.
if TYPE_CHECKING:
    from torch import Tensor

PAD = 2  # pixels between tiles, as make_grid's default


def to_uint8(images: Tensor) -> np.ndarray:
    """Images ``(N, C, H, W)`` in [-1, 1] → uint8 ``(N, H, W, C)`` in [0, 255] (clamped)."""
    import torch

    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def mosaic(pixels: np.ndarray, cols: int) -> np.ndarray:
    """Tiles ``(N, H, W[, C])`` → one ``(PAD + rows·(H + PAD), PAD + cols·(W + PAD)[, C])`` image,
    ``cols`` tiles a row, black between them (as torchvision's ``make_grid``)."""
    n, h, w = pixels.shape[:3]
    rows = -(-n // cols)
    out = np.zeros((PAD + rows * (h + PAD), PAD + cols * (w + PAD), *pixels.shape[3:]), dtype=pixels.dtype)
    for i, image in enumerate(pixels):
        y, x = PAD + (i // cols) * (h + PAD), PAD + (i % cols) * (w + PAD)
        out[y : y + h, x : x + w] = image
    return out


def tile(images: Tensor, cols: int) -> Image.Image:
    """Images ``(N, C, H, W)`` in [-1, 1] as one grey (or RGB) grid image, ``cols`` per row."""
    grid = mosaic(to_uint8(images), cols)
    return Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)


def grid_figure(
    panels: Sequence[tuple[str, Tensor]], row_labels: Sequence[str], scale: int = 2
) -> Image.Image:
    """The lab's figure. ``panels`` is [(title, images ``(rows · cols, C, H, W)``)], row-major
    with ``len(row_labels)`` rows; each panel is upscaled ``scale``× (nearest)."""
    rows = len(row_labels)
    grids = [tile(images, cols=len(images) // rows) for _, images in panels]
    grids = [g.resize((g.width * scale, g.height * scale), Image.Resampling.NEAREST) for g in grids]
    font = ImageFont.load_default(size=7 * scale)
    (label_w, title_h), gap = panel_origin(row_labels, scale), 8 * scale
    width = label_w + sum(g.width for g in grids) + gap * (len(grids) - 1)
    height = title_h + max(g.height for g in grids)
    fig = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(fig)
    x = label_w
    for (title, _), grid in zip(panels, grids, strict=True):
        fig.paste(grid.convert("RGB"), (x, title_h))
        draw.text((x + grid.width // 2, title_h // 2), title, fill="black", font=font, anchor="mm")
        x += grid.width + gap
    row_h = grids[0].height / rows
    for i, label in enumerate(row_labels):
        draw.text((label_w - 4, title_h + (i + 0.5) * row_h), label, fill="black", font=font, anchor="rm")
    return fig


def panel_origin(row_labels: Sequence[str], scale: int = 2) -> tuple[int, int]:
    """(x, y) of the first panel's top-left pixel in :func:`grid_figure`'s figure."""
    return 12 * scale + 2 * max(map(len, row_labels)) * scale, 12 * scale


TILES_KEY = "tiles"
"""A PNG text chunk locating a one-panel figure's tiles: ``x,y,rows,cols,scale``."""


def tiles_text(row_labels: Sequence[str], cols: int, scale: int = 2) -> str:
    """The :data:`TILES_KEY` chunk of :func:`grid_figure`'s one-panel figure."""
    x, y = panel_origin(row_labels, scale)
    return f"{x},{y},{len(row_labels)},{cols},{scale}"


def figure_tiles(pixels: np.ndarray, chunk: str) -> tuple[np.ndarray, int, int]:
    """The tiles of a figure's uint8 ``(H, W)`` pixels, located by its :data:`TILES_KEY` chunk:
    ``(rows · cols, h, w)`` at the images' own size, row-major, and (rows, cols).
    ValueError when the chunk does not describe these pixels."""
    x, y, rows, cols, scale = (int(v) for v in chunk.split(","))
    if min(rows, cols, scale) < 1 or x < 0 or y < 0:
        raise ValueError(f"bad {TILES_KEY} chunk {chunk!r}")
    native = pixels[y::scale, x::scale]  # upscaled by repetition: every scale-th pixel is the image
    size = (native.shape[0] - PAD) // rows - PAD, (native.shape[1] - PAD) // cols - PAD
    if min(size) < 1:
        raise ValueError(f"the {TILES_KEY} chunk {chunk!r} does not fit a {pixels.shape} figure")
    tiles = [
        native[PAD + r * (size[0] + PAD) :][: size[0], PAD + c * (size[1] + PAD) :][:, : size[1]]
        for r in range(rows)
        for c in range(cols)
    ]
    return np.stack(tiles), rows, cols


def save_png(image: Image.Image, path: str | os.PathLike, text: dict[str, str] | None = None) -> Path:
    """Write ``image`` as PNG atomically, with ``text`` as tEXt chunks (how the image was made: any
    PNG reader shows them, e.g. ``identify -verbose``); raises OSError when the path is not writable."""
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return atomic_write_bytes(path, buffer.getvalue())


def row_names(labels: Sequence[int], null_label: int) -> list[str]:
    """Names of the grid's rows: the digit, or ``null`` for the unconditional label."""
    return ["null" if int(y) == null_label else str(int(y)) for y in labels]


def guidance_title(w: float) -> str:
    return f"w = {w:g}"


def save_samples_npz(
    path: str | os.PathLike, panels: Sequence[tuple[float, np.ndarray]], labels: np.ndarray
) -> Path:
    """Samples as .npz, atomically: ``images`` float32 ``(N, 1, H, W)`` in [-1, 1], ``labels``
    int64 ``(N,)`` and ``guidance`` float32 ``(N,)``, the panels one after another.

    ``panels`` is [(w, images ``(n, 1, H, W)``)], each for the same ``labels`` ``(n,)``.
    """
    buffer = io.BytesIO()
    np.savez(
        buffer,
        images=np.concatenate([np.clip(x, -1, 1) for _, x in panels]).astype(np.float32),
        labels=np.tile(np.asarray(labels, dtype=np.int64), len(panels)),
        guidance=np.repeat(np.asarray([w for w, _ in panels], dtype=np.float32), len(labels)),
    )
    return atomic_write_bytes(path, buffer.getvalue())


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def line_chart(
    series: dict[str, list[tuple[float, float]]],
    title: str,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    size: tuple[int, int] = (640, 400),
) -> Image.Image:
    """A plain line chart (one coloured line and legend entry per series) as a Pillow image.

    Pillow's default font has Latin letters only: keep titles and labels ASCII."""
    width, height = size
    left, right, top, bottom = 70, 20, 40, 50
    points = [p for values in series.values() for p in values]
    tx = (lambda x: np.log10(max(x, 1e-12))) if log_x else (lambda x: x)
    xs, ys = [tx(x) for x, _ in points], [y for _, y in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def at(x: float, y: float) -> tuple[float, float]:
        px = left + (tx(x) - x0) / (x1 - x0) * (width - left - right)
        return px, height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        py = at(10**x0 if log_x else x0, y)[1]
        draw.line([left, py, width - right, py], fill="#e0e0e0")
        draw.text((left - 6, py), f"{y:.3g}", fill="black", font=font, anchor="rm")
    for x in sorted({x for x, _ in points}):
        px = at(x, y0)[0]
        draw.text((px, height - bottom + 6), f"{x:g}", fill="black", font=font, anchor="mt")
    for i, (name, values) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = [at(x, y) for x, y in sorted(values)]
        if len(coords) > 1:
            draw.line(coords, fill=colour, width=2)
        for px, py in coords:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.text((left + 10, top + 8 + 16 * i), f"- {name}", fill=colour, font=font)
    draw.text((width / 2, 12), title, fill="black", font=font, anchor="mt")
    draw.text((width / 2, height - 14), x_label, fill="black", font=font, anchor="mm")
    draw.text((left, top - 12), y_label, fill="black", font=font, anchor="lm")
    return image


class SamplesError(ValueError):
    """A samples file that cannot be scored; the message is one line naming the problem."""


def load_samples_npz(path: str | os.PathLike) -> tuple[Tensor, Tensor]:
    """``images`` ``(N, 1, H, W)`` float32 in [-1, 1] and int64 ``labels`` ``(N,)`` of a file in
    :func:`save_samples_npz`'s format; nothing is unpickled. :class:`SamplesError` if it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ("images", "labels") if name in npz.files}
    except FileNotFoundError:
        raise SamplesError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as e:
        raise SamplesError(
            f"{path} is not a readable .npz file ({str(e).splitlines()[0] or type(e).__name__})"
        ) from None
    missing = [name for name in ("images", "labels") if name not in arrays]
    if missing:
        raise SamplesError(f"{path} has no {' and no '.join(missing)} array (see cfg-tui sample --npz)")
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 4 or images.shape[1] != 1 or not np.issubdtype(images.dtype, np.floating):
        raise SamplesError(f"{path}: images must be float (N, 1, H, W), not {images.dtype} {images.shape}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise SamplesError(
            f"{path}: labels must be {len(images)} integers, not {labels.dtype} {labels.shape}"
        )
    if len(images) < 2 or not np.isfinite(images).all() or images.min() < -1.001 or images.max() > 1.001:
        raise SamplesError(f"{path}: images must be at least 2, finite, in [-1, 1]")
    import torch

    return torch.from_numpy(images.astype(np.float32)).clamp(-1, 1), torch.from_numpy(labels.astype(np.int64))
