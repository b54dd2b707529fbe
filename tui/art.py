"""Images as terminal art: ``▀`` cells whose foreground is the upper pixel and background the lower.

Greys are given as RGB; Rich (and Textual) turn them into the nearest colour the terminal
has, and on a 256-colour terminal a grey lands on the 24-step grey ramp.

Also the grid's geometry, in cells: a panel of ``rows × cols`` tiles of ``tile`` pixels is
``PAD + cols·(tile + PAD)`` cells wide and ``(PAD + rows·(tile + PAD)) / 2`` lines tall (two
pixel rows a line), and :func:`fit_grid` chooses the tile size and the panels' arrangement.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from rich.color import Color
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from core.images import PAD, mosaic

UPPER_HALF = "▀"
SHADES = " .:-=+*#%@"
MIN_TILE = 16
"""Pixels: the smallest tile at which digits stay readable as half-blocks."""
MIN_FIT_TILE = 8
"""Pixels: the smallest tile the grid shrinks (or zooms out) to; digits are still recognisable."""
GAP = 1
"""Cells between guidance panels side by side."""


def shade_text(pixels: np.ndarray) -> list[str]:
    """A uint8 ``(H, W)`` image as text, one character per 1×2 pixels (dark → light: " .:-=+*#%@")."""
    if pixels.shape[0] % 2:
        pixels = np.vstack([pixels, np.zeros_like(pixels[:1])])
    pairs = (pixels[0::2].astype(np.uint16) + pixels[1::2]) / 2  # (H/2, W)
    index = np.minimum((pairs * len(SHADES) / 256).astype(int), len(SHADES) - 1)
    return ["".join(SHADES[i] for i in row) for row in index]


def half_block_pairs(pixels: np.ndarray) -> np.ndarray:
    """A uint8 ``(H, W)`` image as ``(ceil(H/2), W, 2)`` (upper, lower) pixel pairs: one ``▀`` cell each."""
    if pixels.shape[0] % 2:
        pixels = np.vstack([pixels, np.zeros_like(pixels[:1])])
    return np.stack([pixels[0::2], pixels[1::2]], axis=-1)


def halve(images: np.ndarray) -> np.ndarray:
    """2×2 mean pooling of uint8 ``(N, H, W)``."""
    n, h, w = images.shape
    return images.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4)).round().astype(np.uint8)


def fit_tiles(images: np.ndarray, cols: int, columns: int) -> np.ndarray:
    """uint8 tiles ``(N, H, W)`` at half the resolution, and half again, while ``cols`` of them
    (with :data:`PAD` around each) are wider than ``columns`` cells, down to :data:`MIN_TILE`."""
    while PAD + cols * (images.shape[-1] + PAD) > columns and images.shape[-1] >= 2 * MIN_TILE:
        images = halve(images)
    return images


def _grey(value: int) -> Color:
    return Color.from_rgb(value, value, value)


_GREYS = [_grey(value) for value in range(256)]


def half_block_segments(pixels: np.ndarray) -> list[list[Segment]]:
    """A uint8 ``(H, W)`` image as ``ceil(H/2)`` lines of ``W`` ``▀`` segments."""
    return [
        [_pair_segment(upper, lower) for upper, lower in row] for row in half_block_pairs(pixels).tolist()
    ]


@lru_cache(maxsize=1 << 16)  # every (upper, lower) pair: the grid redraws them on every page and frame
def _pair_segment(upper: int, lower: int) -> Segment:
    return Segment(UPPER_HALF, Style(color=_GREYS[upper], bgcolor=_GREYS[lower]))


def half_block_lines(pixels: np.ndarray) -> list[Text]:
    """A uint8 ``(H, W)`` image as ``ceil(H/2)`` lines of ``W`` cells."""
    lines = []
    for segments in half_block_segments(pixels):
        line = Text()
        for segment in segments:
            line.append(segment.text, segment.style)
        lines.append(line)
    return lines


def labelled_text(
    lines: Sequence[Text | str], title: str, row_labels: Sequence[str], row_height: int
) -> Text:
    """Lines of art (two pixel rows each) with a title above and each label on the line
    nearest the middle of its row of tiles."""
    width = max(map(len, row_labels)) + 1
    label_at = {int((i + 0.5) * row_height) // 2: label for i, label in enumerate(row_labels)}
    out = Text()
    out.append(" " * width + title + "\n", style="bold")
    for i, line in enumerate(lines):
        out.append(label_at.get(i, "").rjust(width - 1) + " ")
        out.append(line)
        out.append("\n")
    return out


def art_console(plain: bool = False) -> Console:
    """A console for printed art: colours even when piped (that is what --show asks for),
    detected from the terminal when there is one, else truecolor."""
    if plain:
        return Console(highlight=False)
    return Console(
        force_terminal=True, color_system="auto" if sys.stdout.isatty() else "truecolor", highlight=False
    )


# -- the grid's pages and geometry ---------------------------------------------------------------


def tile_sizes(native: int) -> list[int]:
    """The tile sizes (pixels) a grid of ``native``-pixel images can show, biggest first: ``native``
    and its halves while they stay whole and at least :data:`MIN_FIT_TILE` (32 → [32, 16, 8])."""
    sizes = [native]
    while sizes[-1] % 2 == 0 and sizes[-1] // 2 >= MIN_FIT_TILE:
        sizes.append(sizes[-1] // 2)
    return sizes


def shrink(images: np.ndarray, tile: int) -> np.ndarray:
    """uint8 ``(N, H, W)`` → ``(N, tile, tile·W/H)`` by 2×2 means, halving until ``H == tile``."""
    while images.shape[-2] > tile:
        images = halve(images)
    return images


def page_mosaic(images: np.ndarray, per_row: int, tile: int, rows: range, cols: range) -> np.ndarray:
    """The one place a page's pixels are made, for every way of drawing them.

    ``images`` uint8 ``(R · per_row, H, W)``, row-major; the tiles at ``rows × cols`` shrunk to
    ``tile`` pixels → one uint8 ``(PAD + len(rows)·(tile + PAD), PAD + len(cols)·(tile + PAD))``."""
    h, w = images.shape[-2:]
    grid = images.reshape(-1, per_row, h, w)[rows.start : rows.stop, cols.start : cols.stop]
    return mosaic(shrink(grid.reshape(-1, h, w), tile), len(cols))


def panel_cells(tile: int, rows: int, cols: int) -> tuple[int, int]:
    """(columns, lines) of ``rows × cols`` tiles of ``tile`` pixels drawn two pixel rows a line."""
    return PAD + cols * (tile + PAD), -(-(PAD + rows * (tile + PAD)) // 2)


def cols_in(cells: int, tile: int) -> int:
    """How many tiles of ``tile`` pixels (with their padding) fit in ``cells`` columns."""
    return max(0, (cells - PAD) // (tile + PAD))


def rows_in(lines: int, tile: int) -> int:
    """How many rows of tiles of ``tile`` pixels (with their padding) fit in ``lines`` lines."""
    return max(0, (2 * lines - PAD) // (tile + PAD))


def label_line(row: int, tile: int) -> int:
    """The line (from the top of a panel's art) nearest the middle of its ``row``-th row of tiles."""
    return (PAD + row * (tile + PAD) + tile // 2) // 2


Arrangement = Literal["side", "stacked", "single"]
ARRANGEMENTS: tuple[Arrangement, ...] = ("side", "stacked", "single")
"""In order of preference when two show as many tiles: side by side compares w at a glance."""


@dataclass(frozen=True)
class Fit:
    """How a grid is shown: ``panels`` panels at once (all, some side by side, or one), each
    ``rows × cols`` tiles of ``tile`` pixels; a title line above each panel."""

    tile: int
    arrangement: Arrangement
    rows: int
    cols: int
    panels: int

    @property
    def shown(self) -> int:
        """Tiles on screen at once."""
        return self.panels * self.rows * self.cols

    def cells(self) -> tuple[int, int]:
        """(columns, lines) of one panel's art."""
        return panel_cells(self.tile, self.rows, self.cols)

    def origins(self, label_width: int) -> list[tuple[int, int]]:
        """(x, y) of each shown panel's title; its art starts on the line below."""
        width, height = self.cells()
        if self.arrangement == "side":
            return [(label_width + i * (width + GAP), 0) for i in range(self.panels)]
        if self.arrangement == "stacked":
            return [(label_width, i * (height + 1)) for i in range(self.panels)]
        return [(label_width, 0)]

    def size(self, label_width: int) -> tuple[int, int]:
        """(columns, lines) of the whole picture: labels, titles and art."""
        width, height = self.cells()
        x, y = self.origins(label_width)[-1]
        return x + width, y + 1 + height


def _candidate(
    arrangement: Arrangement, tile: int, space: tuple[int, int], shape: tuple[int, int, int], label_width: int
) -> Fit | None:
    """The most of a ``shape`` = (panels, rows, cols) grid that ``arrangement`` shows in ``space``
    = (columns, lines) at ``tile`` pixels, or None if not one tile fits. Side by side, fewer
    panels than all (two at least) when only so do all their columns fit."""
    (width, height), (panels, rows, cols) = space, shape
    free = width - label_width
    if arrangement == "side":
        fits = [k for k in range(panels, 1, -1) if cols_in((free - (k - 1) * GAP) // k, tile) >= cols]
        shown = fits[0] if fits else panels
        free, lines = (free - (shown - 1) * GAP) // shown, height - 1
    elif arrangement == "stacked":
        lines, shown = height // panels - 1, panels
    else:
        lines, shown = height - 1, 1
    fit = Fit(tile, arrangement, min(rows, rows_in(lines, tile)), min(cols, cols_in(free, tile)), shown)
    return fit if fit.rows and fit.cols else None


def fit_grid(
    width: int, height: int, shape: tuple[int, int, int], label_width: int, tiles: Sequence[int]
) -> Fit | None:
    """Choose how ``shape`` = (panels, rows, cols) tiles show in ``width × height`` cells.

    The whole grid at the biggest tile of ``tiles`` that holds it (side by side, else stacked,
    else, for one panel, alone); failing that, the arrangement that shows the most tiles at the
    smallest tile, the rest paged (side by side may then show some of the panels). Panels go side
    by side or stacked only when all their columns fit: paging columns is for one panel at a time.
    None when not even one tile fits."""
    panels, rows, cols = shape
    arrangements = ARRANGEMENTS if panels > 1 else ("single",)
    candidates = [
        fit
        for tile in tiles
        for arrangement in arrangements
        if (fit := _candidate(arrangement, tile, (width, height), shape, label_width)) is not None
    ]
    whole = [fit for fit in candidates if fit.shown == panels * rows * cols]
    if whole:
        return whole[0]
    paged = [
        fit
        for fit in candidates
        if fit.tile == min(tiles) and (fit.arrangement == "single" or fit.cols == cols)
    ]
    # max keeps the first of equals: ARRANGEMENTS' order of preference.
    return max(paged, key=lambda fit: fit.shown, default=None)


def fit_parts(parts: Sequence[str], width: int, separator: str = " · ") -> str:
    """The leading ``parts`` that fit in ``width`` cells, joined: a part is shown whole or not at all."""
    text = ""
    for part in parts:
        longer = f"{text}{separator}{part}" if text else part
        if len(longer) > width:
            break
        text = longer
    return text
