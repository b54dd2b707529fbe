"""The sample grid: rows (one per label) × columns (samples) × panels (one per guidance scale w).

Fits what it can (:func:`tui.art.fit_grid`): the whole request at the biggest tile of 32, 16 and
8 pixels that holds it, panels side by side, else stacked, else one at a time; what does not fit
at 8 pixels is paged: rows (:meth:`ImageGrid.page`), columns (:meth:`ImageGrid.page_cols`) and
panels (:meth:`ImageGrid.turn`; side by side, as many as fit). :meth:`ImageGrid.zoom` picks the
tile size instead; the mouse wheel moves rows (with shift, columns).

Draws half-blocks, or real pixels by kitty's graphics protocol or sixel (:mod:`tui.graphics`);
the pixels, labels and titles are the same in every mode. Holds uint8 images (no tensors).
"""

from __future__ import annotations

import textwrap
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip

from tui.art import Fit, fit_grid, shrink, tile_sizes
from tui.graphics import (
    DrawMode,
    GraphicsMode,
    PanelArt,
    Picture,
    Placed,
    cell_size,
    detect_mode,
    grid_picture,
    panel_art,
    parse_mode,
)
from tui.widgets.sixel_widget import SixelWidget

EMPTY = "No samples yet: pick digits, then ctrl+g to generate."
TOO_SMALL = "Too small for one tile: make the window bigger."


@dataclass
class GridPanel:
    """One guidance scale's samples: its title (e.g. "w = 3") and uint8 images, row-major."""

    title: str
    images: np.ndarray  # uint8 (rows · per_row, H, W)
    frames: np.ndarray | None = None  # uint8 (T, rows · per_row, H, W): the trajectory, if recorded


class ImageGrid(SixelWidget):
    """Rows of samples (one per label) for each guidance panel, fitted to the widget and paged."""

    DEFAULT_CSS = """
    ImageGrid {
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    panel_index: reactive[int] = reactive(0)
    first_row: reactive[int] = reactive(0)
    first_col: reactive[int] = reactive(0)
    frame: reactive[int | None] = reactive(None)
    zoom_tile: reactive[int | None] = reactive(None)
    """Pixels of a tile chosen by :meth:`zoom`; None fits automatically."""
    graphics: reactive[GraphicsMode] = reactive[GraphicsMode]("auto")
    """What to draw with (auto, kitty, sixel, halfblock); ``auto`` is what was detected before the
    app started (:func:`tui.graphics.detect_mode`), else half-blocks."""

    def __init__(self, id: str | None = None, graphics: GraphicsMode | str = "auto") -> None:
        super().__init__(id=id)
        self.panels: list[GridPanel] = []
        self.row_labels: list[str] = []
        self.per_row = 1
        self.set_reactive(ImageGrid.graphics, parse_mode(graphics))
        self._generation = 0  # changes with every show(): the caches' keys name the data by it
        self._picture_key: Hashable = None
        self._picture: Picture | None = None
        self._strips: list[Strip] = []
        self._arts: dict[Hashable, PanelArt] = {}
        self._fit_key: Hashable = None
        self._fit_value: Fit | None = None

    def validate_graphics(self, value: str) -> GraphicsMode:
        return parse_mode(value)

    def show(self, panels: list[GridPanel], row_labels: list[str], per_row: int) -> None:
        """Show ``panels`` of ``len(row_labels) × per_row`` images each, from the top left."""
        self.panels, self.row_labels, self.per_row = panels, row_labels, per_row
        self._generation += 1
        self.panel_index, self.first_row, self.first_col, self.frame = 0, 0, 0, None
        if panels and self.zoom_tile not in tile_sizes(self._native()):
            self.zoom_tile = None
        self.refresh()

    # -- what is shown ---------------------------------------------------------------------------

    def _native(self) -> int:
        return self.panels[0].images.shape[-2]

    @property
    def draw_mode(self) -> DrawMode:
        """The mode drawn with now (never asks the terminal: Textual is reading it)."""
        return detect_mode(self.graphics, query=False)

    @property
    def label_width(self) -> int:
        """Cells of the label column: the widest label and a space."""
        return max(map(len, self.row_labels), default=0) + 1

    def _fit(self, tiles: list[int] | None = None) -> Fit | None:
        if not self.panels:
            return None
        sizes = tile_sizes(self._native())
        if tiles is None:
            tiles = [self.zoom_tile] if self.zoom_tile in sizes else sizes
        # A sixel image is drawn from the line below it (see render_lines): keep one free.
        height = self.size.height - (self.draw_mode == "sixel")
        shape = (len(self.panels), len(self.row_labels), self.per_row)
        # Asked for by every line drawn: remembered for the last question.
        key = (self.size.width, height, shape, self.label_width, tuple(tiles))
        if key != self._fit_key:
            self._fit_key, self._fit_value = (
                key,
                fit_grid(self.size.width, height, shape, self.label_width, tiles),
            )
        return self._fit_value

    @property
    def fit(self) -> Fit | None:
        """How the grid is shown now: tile size, arrangement, rows and columns per panel."""
        return self._fit()

    @property
    def tile(self) -> int | None:
        """Pixels of a shown tile (None before samples, or when not one fits)."""
        fit = self.fit
        return None if fit is None else fit.tile

    def visible_rows(self) -> range:
        """Indices of the shown rows (the same in every shown panel)."""
        fit = self.fit
        return _window(self.first_row, 0 if fit is None else fit.rows, len(self.row_labels))

    def visible_cols(self) -> range:
        """Indices of the shown columns."""
        fit = self.fit
        return _window(self.first_col, 0 if fit is None else fit.cols, self.per_row)

    def visible_panels(self) -> list[int]:
        """Indices of the shown panels: all, or those from the turned-to one (fewer at the end)."""
        fit = self.fit
        if fit is None:
            return []
        return list(_window(self.panel_index % len(self.panels), fit.panels, len(self.panels)))

    def _images(self, index: int) -> np.ndarray:
        """Panel ``index``'s images ``(N, H, W)``: the trajectory's frame while one is shown."""
        panel = self.panels[index]
        if self.frame is None or panel.frames is None:
            return panel.images
        return panel.frames[min(self.frame, len(panel.frames) - 1)]

    def tile_images(self) -> np.ndarray:
        """The current panel's (or trajectory frame's) images ``(N, t, t)`` at the shown tile size."""
        return shrink(self._images(self.panel_index), self.tile or self._native())

    def fit_for(self, tile: int) -> Fit | None:
        """How the grid would be shown at ``tile`` pixels (None if not one tile fits)."""
        return self._fit([tile])

    def rows_that_fit(self, tile: int | None = None) -> int:
        """Rows of tiles shown per panel (at ``tile`` pixels if given, else as shown)."""
        fit = self.fit if tile is None else self.fit_for(tile)
        return 0 if fit is None else fit.rows

    def cols_that_fit(self, tile: int | None = None) -> int:
        """Columns of tiles shown per panel (at ``tile`` pixels if given, else as shown)."""
        fit = self.fit if tile is None else self.fit_for(tile)
        return 0 if fit is None else fit.cols

    # -- moving ----------------------------------------------------------------------------------

    def page(self, delta: int) -> None:
        """Move by ``delta`` screens of rows."""
        self.scroll_rows(delta * len(self.visible_rows()))

    def page_cols(self, delta: int) -> None:
        """Move by ``delta`` screens of columns."""
        self.scroll_cols(delta * len(self.visible_cols()))

    def scroll_rows(self, delta: int) -> None:
        """Move by ``delta`` rows (the last screen stays full)."""
        shown = self.visible_rows()
        self.first_row = _window(shown.start + delta, len(shown), len(self.row_labels)).start

    def scroll_cols(self, delta: int) -> None:
        """Move by ``delta`` columns (the last screen stays full)."""
        shown = self.visible_cols()
        self.first_col = _window(shown.start + delta, len(shown), self.per_row).start

    def turn(self, delta: int) -> None:
        """Move to the previous/next guidance panel, round the end. When only some are shown, the
        first shown moves, so that every turn shows another (after the last, the first)."""
        if not self.panels:
            return
        shown = self.visible_panels()
        if 0 < len(shown) < len(self.panels):
            self.panel_index = (shown[0] + delta) % (len(self.panels) - len(shown) + 1)
        else:
            self.panel_index = (self.panel_index + delta) % len(self.panels)

    def zoom(self, delta: int) -> None:
        """Tiles ``delta`` sizes bigger (+1: 8 → 16 → 32) or smaller (−1) than shown; 0 fits again."""
        if not self.panels or delta == 0:
            self.zoom_tile = None
            return
        sizes = tile_sizes(self._native())  # biggest first
        at = sizes.index(self.tile) if self.tile in sizes else len(sizes) - 1
        self.zoom_tile = sizes[min(max(at - delta, 0), len(sizes) - 1)]

    def _wheel(self, event: events.MouseEvent, delta: int) -> None:
        """A wheel notch moves a row; with shift, or when every row is shown, a column."""
        rows = self.visible_rows()
        if event.shift or len(rows) == len(self.row_labels):
            self.scroll_cols(delta)
        else:
            self.scroll_rows(delta)
        event.stop()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._wheel(event, 1)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._wheel(event, -1)

    def on_mouse_scroll_right(self, event: events.MouseScrollRight) -> None:
        self.scroll_cols(1)
        event.stop()

    def on_mouse_scroll_left(self, event: events.MouseScrollLeft) -> None:
        self.scroll_cols(-1)
        event.stop()

    # -- the title -------------------------------------------------------------------------------

    def status_parts(self, wording: int = 0) -> list[str]:
        """What the title line says beside the panels' titles: the panel (when one at a time),
        rows, columns, trajectory frame, tile size (and "zoom" when chosen, not fitted).

        ``wording`` 0 says it all; 1 leaves out rows and columns that are all shown; 2 also says
        it tersely ("2/3 · r 3-4/11 · c 1-2/4 · 16px"), for narrow widgets."""
        fit = self.fit
        if fit is None:
            return []
        terse = wording >= 2
        rows, cols = self.visible_rows(), self.visible_cols()
        parts = []
        if fit.panels < len(self.panels):
            word = "" if terse else ("panel " if fit.panels == 1 else "panels ")
            shown = self.visible_panels()
            parts.append(f"{word}{_span(range(shown[0], shown[-1] + 1))}/{len(self.panels)}")
        if wording == 0 or len(rows) < len(self.row_labels):
            parts.append(("r " if terse else "rows ") + f"{_span(rows)}/{len(self.row_labels)}")
        if wording == 0 or len(cols) < self.per_row:
            parts.append(("c " if terse else "cols ") + f"{_span(cols)}/{self.per_row}")
        frames = self.panels[self.panel_index % len(self.panels)].frames
        if self.frame is not None and frames is not None:
            frame = f"{min(self.frame, len(frames) - 1) + 1}/{len(frames)}"
            parts.append(("f " if terse else "frame ") + frame)
        parts.append(f"{fit.tile}{'' if terse else ' '}px" + (" zoom" if self.zoom_tile is not None else ""))
        return parts

    @property
    def status(self) -> str:
        """The title line's words in full, e.g. "w = 3 · panel 2/3 · rows 1-6/11 · cols 1-4/4 · 16 px"
        (the shown panels' titles first)."""
        titles = [self.panels[i].title for i in self.visible_panels()]
        return " · ".join([", ".join(titles), *self.status_parts()] if titles else [])

    # -- drawing ---------------------------------------------------------------------------------

    def _art(
        self, index: int, fit: Fit, rows: range, cols: range, mode: DrawMode
    ) -> tuple[Hashable, PanelArt]:
        """Panel ``index``'s page and its key, made once per (data, frame, tile, page, mode, cell size)."""
        cell = cell_size() if mode != "halfblock" else None
        key = (self._generation, index, self.frame, fit.tile, rows, cols, mode, cell)
        art = self._arts.get(key)
        if art is None:
            console = self.app.console if mode == "kitty" else None
            art = panel_art(self._images(index), self.per_row, fit.tile, rows, cols, mode, console)
        return key, art

    def _current(self) -> tuple[Picture | None, list[Strip]]:
        """The picture and its strips for the state now, rebuilt only when the state changed (this
        is asked once for every line drawn: the key is what everything else follows from)."""
        mode = self.draw_mode
        key = (self._generation, self.size, self.zoom_tile, self.first_row, self.first_col)
        key += (self.panel_index, self.frame, mode)
        if key == self._picture_key:
            return self._picture, self._strips
        fit, width = self.fit, self.size.width
        rows, cols, shown = self.visible_rows(), self.visible_cols(), self.visible_panels()
        status = [self.status_parts(wording) for wording in range(3)]
        if fit is None:
            message = EMPTY if not self.panels else TOO_SMALL
            picture = None
            # Wrapped, not cut: at 80 columns "ctrl+g to generate." ends on the next line.
            lines = [[Segment(line, Style(dim=True))] for line in textwrap.wrap(message, max(width, 1))]
            arts: dict[Hashable, PanelArt] = {}
        else:
            arts = dict(self._art(i, fit, rows, cols, mode) for i in shown)
            titles = [self.panels[i].title for i in shown]
            labels = self.row_labels[rows.start : rows.stop]
            picture = grid_picture(list(arts.values()), titles, labels, fit, status, width, self.label_width)
            lines = picture.lines
        self._replace_arts(arts)
        self._picture_key, self._picture = key, picture
        self._strips = [
            Strip(line, width) if picture else Strip(line).adjust_cell_length(width) for line in lines
        ]
        return picture, self._strips

    def _replace_arts(self, arts: dict[Hashable, PanelArt]) -> None:
        """Keep the shown pages' art; free the rest in the terminal (kitty holds sent images)."""
        for key, art in self._arts.items():
            if key not in arts:
                art.cleanup()
        self._arts = arts

    class Resized(Message):
        """The grid's size changed, and with it how much of the request it shows (see :attr:`fit`)."""

    def on_resize(self, event: events.Resize) -> None:
        self.post_message(self.Resized())

    def on_unmount(self) -> None:
        self._replace_arts({})

    def render_line(self, y: int) -> Strip:
        _, strips = self._current()
        return strips[y] if y < len(strips) else Strip.blank(self.size.width)

    def placed_now(self) -> list[Placed]:
        picture, _ = self._current()
        return picture.placed if picture is not None else []


def _window(start: int, size: int, total: int) -> range:
    """``size`` indices from ``start``, moved back so as to end by ``total``; never before 0."""
    start = min(max(start, 0), max(total - size, 0))
    return range(start, min(start + size, total))


def _span(shown: range) -> str:
    """1-based "a-b" (or "a" for one) of shown indices."""
    first, last = shown.start + 1, shown.stop
    return str(first) if first >= last else f"{first}-{last}"
