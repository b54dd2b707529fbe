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

from core.images import half_block_pairs

UPPER_HALF = "▀"


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
