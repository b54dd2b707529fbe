"""Images as terminal art: ``▀`` cells whose foreground is the upper pixel and background the lower.

Greys are given as RGB; Rich (and Textual) turn them into the nearest colour the terminal
has, and on a 256-colour terminal a grey lands on the 24-step grey ramp.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from rich.color import Color
from rich.console import Console
from rich.style import Style
from rich.text import Text

from core.images import PAD

UPPER_HALF = "▀"
SHADES = " .:-=+*#%@"
MIN_TILE = 16
"""Pixels: the smallest tile at which digits stay readable as half-blocks."""


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


def half_block_lines(pixels: np.ndarray) -> list[Text]:
    """A uint8 ``(H, W)`` image as ``ceil(H/2)`` lines of ``W`` cells."""
    styles: dict[tuple[int, int], Style] = {}
    lines = []
    for row in half_block_pairs(pixels):
        line = Text()
        for upper, lower in row.tolist():
            style = styles.get((upper, lower))
            if style is None:
                style = styles[(upper, lower)] = Style(color=_grey(upper), bgcolor=_grey(lower))
            line.append(UPPER_HALF, style)
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
