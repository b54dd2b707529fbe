"""The newest preview grid of a run (or of several, side by side), beside the Train screen's loss chart.

A trainer writes ``<run>/previews/step-NNNNNN.png`` now and then (``core.session``: a white figure
with a title, row labels and 4 samples per digit, and a text chunk saying where its tiles are: the
pane draws those tiles only, a digit a column). :meth:`PreviewPane.check` lists each run's
previews folder and decodes the newest file only when it is new (keyed by path, mtime and size), so
the screen may call it on its timer, three times a second; the pane has no timer of its own.

A picture is drawn greyscale, shrunk by area averaging (never enlarged) to
fit its place: one column a pixel, one line two pixel rows, by :func:`tui.graphics.art_of` in the
chosen mode (half-blocks, kitty's protocol or sixel), left-aligned under a title line. Several runs
go side by side when each stays readable there, else stacked, else as many as do, with "+k more".
A torn or foreign newest file leaves the last picture up, with one line saying why.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip

from core.images import PAD, TILES_KEY, figure_tiles, mosaic
from tui.art import GAP
from tui.graphics import (
    TITLE_STYLE,
    CellSize,
    DrawMode,
    GraphicsMode,
    PanelArt,
    Placed,
    _Canvas,
    art_of,
    cell_size,
    detect_mode,
    parse_mode,
)
from tui.widgets.sixel_widget import SixelWidget

PREVIEW_NAME = re.compile(r"step-(\d+)\.png")
READABLE = 40
"""Pixels: the width a picture keeps (or its width alone, if less) for runs to share the pane."""
MIN_TITLE = 12
"""Cells: the narrowest place a run's title is given (or the pane's width, if less)."""
IDLE = "no run to preview"
NO_PREVIEW = "no preview yet"
UNREADABLE = "preview unreadable"
ERROR_STYLE = Style(color="red")
IDLE_STYLE = Style(dim=True)
Arrangement = Literal["side", "stacked"]


@dataclass(frozen=True)
class PreviewFile:
    """A preview PNG as listed: its step, path and what says it changed (mtime, size)."""

    step: int
    path: Path
    mtime_ns: int
    size: int


def newest_preview(folder: Path) -> PreviewFile | None:
    """The ``step-N.png`` in ``folder`` with the largest N (by number, not name); None if none or
    the folder cannot be listed. One listing and one stat."""
    best: tuple[int, os.DirEntry[str]] | None = None
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                match = PREVIEW_NAME.fullmatch(entry.name)
                if match and (best is None or int(match[1]) > best[0]) and entry.is_file():
                    best = (int(match[1]), entry)
        if best is None:
            return None
        stat = best[1].stat()
    except OSError:  # no previews folder yet, or the run was removed
        return None
    return PreviewFile(best[0], Path(best[1].path), stat.st_mtime_ns, stat.st_size)


@dataclass(frozen=True)
class Tiles:
    """A trainer's preview as its tiles: ``(digits · samples, h, w)`` uint8, a digit's samples in a
    row, as located by the figure's ``tiles`` text chunk (:func:`core.images.figure_tiles`)."""

    images: np.ndarray
    digits: int
    samples: int

    def layout(self, width: int, height: int) -> tuple[int, int]:
        """(digits a row, samples shown) for ``width × height`` pixels: every digit always; the
        most samples that keep tiles :data:`READABLE_TILE` pixels wide, else the biggest tiles."""
        best: tuple[tuple[bool, int, int], tuple[int, int]] | None = None
        for across in range(self.digits, 0, -1):
            blocks = -(-self.digits // across)
            for samples in range(1, self.samples + 1):
                tile = min((width - PAD) // across, (height - PAD) // (blocks * samples)) - PAD
                tile = min(tile, self.images.shape[-1])
                readable = tile >= READABLE_TILE
                score = (readable, samples if readable else tile, tile)
                if best is None or score > best[0]:
                    best = (score, (across, samples))
        assert best is not None
        return best[1]

    def mosaic(self, across: int, samples: int) -> np.ndarray:
        """The tiles with a digit a column: ``across`` digits side by side, each its first
        ``samples`` samples down, the next digits in a block below."""
        blank = np.zeros_like(self.images[0])
        blocks = -(-self.digits // across)
        order = []
        for block in range(blocks):
            for sample in range(samples):
                for column in range(across):
                    digit = block * across + column
                    order.append(self.images[digit * self.samples + sample] if digit < self.digits else blank)
        return mosaic(np.stack(order), cols=across)


READABLE_TILE = 12
"""Pixels: a digit this wide still reads as itself in half-blocks; below it, fewer samples are shown
so that every digit stays as big as can be."""


def decode(path: Path) -> np.ndarray | Tiles:
    """The PNG at ``path`` as uint8 ``(H, W)`` grey, or a trainer's preview (its tiles located by
    a ``tiles`` text chunk) as :class:`Tiles`, laid out later for the room there is, title, labels
    and margins left out. PIL's errors (OSError and others) pass on."""
    with Image.open(path) as image:
        chunk = getattr(image, "text", {}).get(TILES_KEY)
        pixels = np.array(image.convert("L"))
    if pixels.ndim != 2 or 0 in pixels.shape:
        raise ValueError("empty image")
    return Tiles(*figure_tiles(pixels, chunk)) if chunk else pixels


def error_text(path: Path, error: Exception) -> str:
    """One line: ``preview unreadable: step-000300.png: <PIL's reason, without the path>``."""
    reason = str(error).replace(repr(str(path)), "").replace(str(path), "").strip()
    reason = (reason.splitlines() or [""])[0] or type(error).__name__
    return f"{UNREADABLE}: {path.name}: {reason}"


def fitted(shape: tuple[int, int], cols: int, lines: int) -> tuple[int, int] | None:
    """(height, width) in pixels of an image of ``shape`` = (H, W) shrunk to ``cols`` columns and
    ``lines`` lines (two pixel rows each), aspect kept, never enlarged; None when not a pixel fits."""
    h, w = shape
    if cols <= 0 or lines <= 0:
        return None
    if w * 2 * lines <= h * cols:  # the height binds (integers: no float rounding a line away)
        height = min(h, 2 * lines)
        width = w * height // h
    else:
        width = min(w, cols)
        height = h * width // w
    if height > 1 and height % 2:  # art_of draws an odd last row over black: a dark line on white
        height -= 1
    return (height, width) if height >= 1 and width >= 1 else None


def shrink_to(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``(H, W)`` → ``size`` = (h, w), each pixel the mean of the area it covers (PIL's BOX)."""
    if pixels.shape == size:
        return pixels
    image = Image.fromarray(pixels).resize((size[1], size[0]), Image.Resampling.BOX)
    return np.asarray(image)


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, with ``…`` where it was cut."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…" if width > 0 else ""


@dataclass(frozen=True)
class Slot:
    """Run ``index``'s place: ``cols × lines`` cells from (x, y): its title line, its error line if
    any, then its picture."""

    index: int
    x: int
    y: int
    cols: int
    lines: int


def slots(count: int, arrangement: Arrangement, width: int, height: int) -> list[Slot]:
    """``count`` equal places in ``width × height`` cells, side by side (:data:`GAP` between) or
    stacked."""
    if arrangement == "side":
        cols = (width - GAP * (count - 1)) // count
        return [Slot(i, i * (cols + GAP), 0, cols, height) for i in range(count)]
    lines = height // count
    return [Slot(i, 0, i * lines, width, lines) for i in range(count)]


@dataclass
class RunPreview:
    """What is known of one run's previews: the newest file listed, and the last one decoded."""

    path: Path
    seen: PreviewFile | None = None
    """The newest file at the last check (decoded, or tried)."""
    loaded: PreviewFile | None = None
    """The file ``pixels`` came from."""
    source: np.ndarray | Tiles | None = None
    """uint8 ``(H, W)`` grey at the PNG's own size, or a trainer's preview's tiles."""
    error: str | None = None
    """Why ``seen`` could not be decoded (``pixels`` are then an older preview's, or None)."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def header_lines(self) -> int:
        """Lines above the picture: the title, and the error line if any."""
        return 1 + (self.error is not None)

    def check(self) -> bool:
        """List the previews folder; decode the newest file if it is not the one seen last.
        Whether anything shown changed. Never raises."""
        newest = newest_preview(self.path / "previews")
        if newest == self.seen:
            return False
        self.seen = newest
        if newest is None:  # the previews went away (the run was removed): show that
            self.loaded = self.source = self.error = None
            return True
        try:
            source = decode(newest.path)
        except Exception as e:  # any decoder's error: a torn or foreign file must not end the app
            self.error = error_text(newest.path, e)
            return True
        self.loaded, self.source, self.error = newest, source, None
        return True

    def shown_size(self, cols: int, lines: int) -> float | None:
        """How big the picture is in ``cols × lines`` cells: a trainer's preview's digits' width in
        pixels, another picture's width; None when nothing is decoded or not a pixel fits."""
        picture = self.picture(cols, lines)
        size = None if picture is None else fitted(picture.shape, cols, lines)
        if size is None or picture is None:
            return None
        if isinstance(self.source, Tiles):
            return self.source.images.shape[-1] * size[1] / picture.shape[1]
        return size[1]

    def picture(self, cols: int, lines: int) -> np.ndarray | None:
        """uint8 ``(H, W)`` to fit into ``cols × lines`` cells: the PNG's pixels, or the tiles laid
        out for that room (:meth:`Tiles.layout`); None before a preview is decoded."""
        if isinstance(self.source, Tiles):
            return self.source.mosaic(*self.source.layout(cols, 2 * lines))
        return self.source


class PreviewPane(SixelWidget):
    """The newest preview of each run in :meth:`show_runs`, fitted to the widget."""

    DEFAULT_CSS = """
    PreviewPane {
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    mode: reactive[GraphicsMode] = reactive[GraphicsMode]("halfblock")
    """What to draw with (halfblock, kitty, sixel; ``auto``: what was detected before the app
    started, else half-blocks). Setting it redraws."""

    def __init__(
        self,
        mode: GraphicsMode | str = "halfblock",
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(PreviewPane.mode, parse_mode(mode))
        self._runs: list[RunPreview] = []
        self._generation = 0  # changes whenever what is shown changes: the picture's key names it
        self._picture_key: Hashable = None
        self._placed: list[Placed] = []
        self._strips: list[Strip] = []
        self._arts: dict[Hashable, PanelArt] = {}

    def validate_mode(self, value: str) -> GraphicsMode:
        return parse_mode(value)

    # -- what is shown ---------------------------------------------------------------------------

    def show_runs(self, paths: list[Path]) -> None:
        """Show the newest preview of each run folder in ``paths`` (one, or several to compare;
        none: an idle line). Runs already shown keep what they decoded."""
        known = {run.path: run for run in self._runs}
        self._runs = [known.get(Path(path)) or RunPreview(Path(path)) for path in paths]
        self._generation += 1
        self.check()
        self.refresh()

    def check(self) -> bool:
        """Look for a newer preview of every run (a listing and a stat each; a PNG is decoded once
        per new file) and redraw if one came. Whether anything changed."""
        changed = [run.check() for run in self._runs]
        if any(changed):
            self._generation += 1
            self.refresh()
        return any(changed)

    @property
    def runs(self) -> list[Path]:
        """The run folders shown, in order."""
        return [run.path for run in self._runs]

    @property
    def steps(self) -> list[int | None]:
        """The step of each run's picture (None: no preview decoded yet)."""
        return [run.loaded.step if run.loaded else None for run in self._runs]

    @property
    def draw_mode(self) -> DrawMode:
        """The mode drawn with now (never asks the terminal: Textual is reading it)."""
        return detect_mode(self.mode, query=False)

    # -- layout ----------------------------------------------------------------------------------

    def layout_slots(self, width: int, height: int) -> tuple[list[Slot], int]:
        """The places of the runs shown in ``width × height`` cells, and how many runs are left out:
        all side by side if each stays readable, else stacked, else the first k that do (one at
        least)."""
        count = len(self._runs)
        for k in range(count, 1, -1):
            for arrangement in ("side", "stacked"):
                candidate = slots(k, arrangement, width, height)
                if all(self._readable(slot, width, height) for slot in candidate):
                    return candidate, count - k
        return slots(1, "side", width, height), count - 1

    def _readable(self, slot: Slot, width: int, height: int) -> bool:
        """Whether run ``slot.index`` shows well in ``slot``: its title and error line, and its
        picture at least :data:`READABLE` pixels wide (or as wide as it would be alone); a trainer's
        preview its digits :data:`READABLE_TILE` pixels wide (or as big as they would be alone)."""
        run = self._runs[slot.index]
        if slot.lines < run.header_lines or slot.cols < min(MIN_TITLE, width):
            return False
        alone = run.shown_size(width, height - run.header_lines)
        shared = run.shown_size(slot.cols, slot.lines - run.header_lines)
        if alone is None:
            return True
        need = READABLE_TILE if isinstance(run.source, Tiles) else READABLE
        return shared is not None and shared >= min(need, alone)

    def title(self, run: RunPreview, width: int, more: int = 0) -> str:
        """``<run> · step N`` (``step N`` when one run is shown and no more are asked for), or
        ``<run> · no preview yet``, with ``+k more`` after; shorter wordings when narrow."""
        named = len(self._runs) > 1 or run.loaded is None
        step = run.loaded.step if run.loaded else None
        tail = [f"+{more} more"] if more else []
        long = [f"step {step}" if step is not None else NO_PREVIEW, *tail]
        short = [str(step) if step is not None else "no preview", *([f"+{more}"] if more else [])]
        for parts in ([run.name, *long], [run.name, *short]) if named else (long, short):
            if len(text := " · ".join(parts)) <= width:
                return text
        rest = " · ".join(short)
        if named and width - len(rest) - 3 >= 2:  # the run's name cut, the step whole
            return clip(run.name, width - len(rest) - 3) + " · " + rest
        return clip(" · ".join([run.name, *short] if named else short), width)

    # -- drawing ---------------------------------------------------------------------------------

    def _cell(self, mode: DrawMode) -> CellSize | None:
        return cell_size() if mode != "halfblock" else None

    def _current(self) -> tuple[list[Placed], list[Strip]]:
        """The placed art and the lines for the state now, rebuilt only when it changed (asked for
        every line drawn)."""
        mode = self.draw_mode
        key = (self._generation, self.size, mode, self._cell(mode))
        if key != self._picture_key:
            self._placed, self._strips = self._build(mode)
            self._picture_key = key
        return self._placed, self._strips

    def _build(self, mode: DrawMode) -> tuple[list[Placed], list[Strip]]:
        """Every shown run's title, error line and art, laid out; arts no longer shown are freed."""
        width = self.size.width
        # A sixel image is drawn from the line below it (see render_lines): keep one free.
        height = self.size.height - (mode == "sixel")
        if not self._runs or width <= 0 or height <= 0:
            self._replace_arts({})
            return [], [Strip([Segment(clip(IDLE, width), IDLE_STYLE)]).adjust_cell_length(width)]
        canvas, placed, arts = _Canvas(width), [], {}
        shown, more = self.layout_slots(width, height)
        for slot in shown:
            run = self._runs[slot.index]
            title = self.title(run, slot.cols, more if slot is shown[-1] else 0)
            canvas.put(slot.x, slot.y, [Segment(title, TITLE_STYLE)], len(title))
            if run.error is not None:
                error = clip(run.error, slot.cols)
                canvas.put(slot.x, slot.y + 1, [Segment(error, ERROR_STYLE)], len(error))
            y = slot.y + run.header_lines
            art = self._art(run, slot.cols, slot.lines - run.header_lines, mode, arts)
            if art is not None:
                for j, line in enumerate(art.lines):
                    canvas.put(slot.x, y + j, line, art.cells[0])
                placed.append(Placed(slot.x, y, art))
        self._replace_arts(arts)
        return placed, [Strip(line, width) for line in canvas.lines()]

    def _art(
        self, run: RunPreview, cols: int, lines: int, mode: DrawMode, arts: dict[Hashable, PanelArt]
    ) -> PanelArt | None:
        """``run``'s picture fitted to ``cols × lines`` cells in ``mode``, made once per (file, size,
        mode, cell size) and put in ``arts``; None when there is none or not a pixel fits."""
        picture = run.picture(cols, lines)
        if picture is None or (size := fitted(picture.shape, cols, lines)) is None:
            return None
        key = (run.path, run.loaded, picture.shape, size, mode, self._cell(mode))
        art = self._arts.get(key)
        if art is None:
            console = self.app.console if mode == "kitty" else None
            art = art_of(shrink_to(picture, size), mode, console)
        arts[key] = art
        return art

    def _replace_arts(self, arts: dict[Hashable, PanelArt]) -> None:
        """Keep the shown arts; free the rest in the terminal (kitty holds sent images)."""
        for key, art in self._arts.items():
            if key not in arts:
                art.cleanup()
        self._arts = arts

    def on_unmount(self) -> None:
        self._replace_arts({})

    def render_line(self, y: int) -> Strip:
        _, strips = self._current()
        return strips[y] if y < len(strips) else Strip.blank(self.size.width)

    def placed_now(self) -> list[Placed]:
        placed, _ = self._current()
        return placed
