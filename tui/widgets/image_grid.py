"""The sample grid as half-block art: one guidance panel at a time, rows paged to fit.

Holds uint8 images (no tensors); halves the tiles (to 16 pixels at least) to fit the width, shows
as many rows as fit the height, and pages through rows and panels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from core.images import PAD, mosaic
from tui.art import fit_tiles, half_block_lines, labelled_text


@dataclass
class GridPanel:
    title: str
    images: np.ndarray  # uint8 (rows · per_row, H, W)
    frames: np.ndarray | None = None  # uint8 (T, rows · per_row, H, W): the trajectory, if recorded


class ImageGrid(Widget):
    """Rows of samples (one per label) for one guidance panel, as ``▀`` cells."""

    DEFAULT_CSS = """
    ImageGrid {
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    panel_index: reactive[int] = reactive(0)
    first_row: reactive[int] = reactive(0)
    frame: reactive[int | None] = reactive(None)

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.panels: list[GridPanel] = []
        self.row_labels: list[str] = []
        self.per_row = 1

    def show(self, panels: list[GridPanel], row_labels: list[str], per_row: int) -> None:
        self.panels, self.row_labels, self.per_row = panels, row_labels, per_row
        self.panel_index, self.first_row, self.frame = 0, 0, None
        self.refresh()

    def _label_width(self) -> int:
        return max(map(len, self.row_labels), default=1) + 1

    def tile_images(self) -> np.ndarray:
        """The current panel's (or trajectory frame's) images, halved while too wide."""
        panel = self.panels[self.panel_index]
        images = panel.images if self.frame is None or panel.frames is None else panel.frames[self.frame]
        return fit_tiles(images, self.per_row, max(self.size.width - self._label_width(), 1))

    def rows_that_fit(self, tile: int) -> int:
        return max(1, (2 * (self.size.height - 1) - PAD) // (tile + PAD))

    def page(self, delta: int) -> None:
        """Move by ``delta`` screens of rows."""
        if not self.panels:
            return
        visible = self.rows_that_fit(self.tile_images().shape[-1])
        last = max(0, len(self.row_labels) - visible)
        self.first_row = min(max(0, self.first_row + delta * visible), last)

    def turn(self, delta: int) -> None:
        """Move to the previous/next guidance panel."""
        if self.panels:
            self.panel_index = (self.panel_index + delta) % len(self.panels)

    def cols_that_fit(self, tile: int) -> int:
        return max(1, min(self.per_row, (self.size.width - self._label_width() - PAD) // (tile + PAD)))

    def render(self) -> Text:
        if not self.panels:
            return Text("No samples yet: pick digits, then ctrl+g to generate.", style="dim")
        images = self.tile_images()
        tile = images.shape[-1]
        visible, cols = self.rows_that_fit(tile), self.cols_that_fit(tile)
        # Labels padded to the widest of all rows, so that paging does not shift the art.
        width = self._label_width() - 1
        rows = [r.rjust(width) for r in self.row_labels[self.first_row : self.first_row + visible]]
        grid = images.reshape(len(self.row_labels), self.per_row, tile, tile)
        shown = grid[self.first_row : self.first_row + len(rows), :cols].reshape(-1, tile, tile)
        text = labelled_text(
            half_block_lines(mosaic(shown, cols)), self._title(len(rows), cols), rows, tile + PAD
        )
        return text

    def _title(self, shown: int, cols: int) -> str:
        panel = self.panels[self.panel_index]
        parts = [panel.title]
        if len(self.panels) > 1:
            parts.append(f"panel {self.panel_index + 1}/{len(self.panels)}")
        if shown < len(self.row_labels):
            parts.append(f"rows {self.first_row + 1}-{self.first_row + shown}/{len(self.row_labels)}")
        if cols < self.per_row:
            parts.append(f"{cols}/{self.per_row} cols")
        if self.frame is not None and panel.frames is not None:
            parts.append(f"frame {self.frame + 1}/{len(panel.frames)}")
        return " · ".join(parts)
