"""Real pixels through the terminal's graphics protocol (kitty's or sixel, by textual-image), or half-blocks.

Every mode draws the same pixels: :func:`panel_art` makes a page's uint8 mosaic once
(:func:`tui.art.page_mosaic`) and turns that one array into ``▀`` cells, or into the image
textual-image sends (the mosaic blown up, nearest neighbour, to the cells' pixels, so that
textual-image's own resize has nothing to do). Labels and titles are text in every mode.

Detection is textual-image's (it asks the terminal: sixel first, then kitty's protocol), made safe:
never without a terminal on both stdin and stdout, never once Textual reads stdin (the app's
widget only reads what was detected before), and ``CFG_TUI_GRAPHICS`` overrides it. textual-image
asks the terminal as it is imported when stdout is a terminal, so it is imported here only
through :func:`_renderables`, which keeps it from asking.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast, get_args

import numpy as np
from PIL import Image
from rich.console import Console
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from rich.text import Text

from tui.art import Fit, art_console, fit_parts, half_block_segments, label_line, page_mosaic, tile_sizes

if TYPE_CHECKING:
    from types import ModuleType

GraphicsMode = Literal["auto", "kitty", "sixel", "halfblock"]
"""What to draw with: ``auto`` is what the terminal supports."""
DrawMode = Literal["kitty", "sixel", "halfblock"]
GRAPHICS_MODES: tuple[GraphicsMode, ...] = get_args(GraphicsMode)
ENV_VAR = "CFG_TUI_GRAPHICS"
"""Overrides ``auto`` (any of :data:`GRAPHICS_MODES`); an explicit mode (``--graphics``) overrides it."""


class CellSize(NamedTuple):
    """Pixels of one terminal cell."""

    width: int
    height: int


DEFAULT_CELL = CellSize(10, 20)
"""What textual-image assumes when the terminal does not say (a VT340's cell)."""

_detected: DrawMode | None = None
"""The terminal's answer, asked once per process."""


def parse_mode(value: str) -> GraphicsMode:
    """``value`` as a :data:`GraphicsMode`; ValueError naming the choices otherwise."""
    mode = value.strip().lower()
    if mode not in GRAPHICS_MODES:
        raise ValueError(f"graphics must be one of {', '.join(GRAPHICS_MODES)}, not {value!r}")
    return cast(GraphicsMode, mode)


def env_mode() -> GraphicsMode | None:
    """:data:`ENV_VAR`'s mode, or None when unset or not a mode (then it is ignored, as unset)."""
    try:
        return parse_mode(os.environ.get(ENV_VAR, ""))
    except ValueError:
        return None


def detect_mode(requested: GraphicsMode | str = "auto", query: bool = True) -> DrawMode:
    """The mode to draw with: ``requested``, else :data:`ENV_VAR`, else what textual-image detects.

    ``query=False`` never asks the terminal (for code running inside Textual, which reads stdin
    itself): it returns what an earlier call detected, or ``halfblock``. With ``query=True``, call
    it before the app starts; it asks at most once per process (a tenth of a second per question
    when the terminal does not answer) and also fixes the cell size textual-image scales by."""
    mode = parse_mode(requested)
    if mode == "auto":
        mode = env_mode() or "auto"
    if mode == "auto":
        mode = _query_terminal() if query else (_detected or "halfblock")
    if mode != "halfblock" and query:
        cell_size(query=True)
    return mode


def _has_terminal() -> bool:
    """Whether textual-image can ask: both stdin and stdout are terminals, and not a dumb one."""
    streams = (sys.__stdin__, sys.__stdout__)
    try:
        ttys = all(s is not None and s.isatty() for s in streams)
    except (ValueError, OSError):  # a closed stream
        return False
    return ttys and os.environ.get("TERM", "") != "dumb"


def _query_terminal() -> DrawMode:
    """textual-image's detection, in its order (sixel, then kitty's protocol), asked once."""
    global _detected
    if _detected is None:
        _detected = "halfblock"
        if _has_terminal():
            try:
                renderables = _renderables()
                if renderables.sixel.query_terminal_support():
                    _detected = "sixel"
                elif renderables.tgp.query_terminal_support():
                    _detected = "kitty"
            except Exception:  # termios.error and the like: a terminal that cannot be asked draws text
                _detected = "halfblock"
    return _detected


def _renderables() -> ModuleType:
    """``textual_image.renderable``, imported without the terminal query it runs on import when
    stdout is a terminal (that query would read stdin, which is Textual's once the app runs)."""
    module = sys.modules.get("textual_image.renderable")
    if module is None:
        stdout = sys.__stdout__
        sys.__stdout__ = None  # type: ignore[misc]  # its import-time check reads "not a terminal"
        try:
            import textual_image.renderable as module
        finally:
            sys.__stdout__ = stdout  # type: ignore[misc]
    return module


def cell_size(query: bool = False) -> CellSize:
    """The terminal's cell in pixels, as textual-image will scale by (it caches its first answer).

    ``query=True`` lets textual-image ask the terminal if its window size does not say (only
    before Textual starts); otherwise the window size or :data:`DEFAULT_CELL`, which is then fixed
    as textual-image's answer so that it never asks from inside the app."""
    from textual_image._terminal import get_cell_size

    cached = getattr(get_cell_size, "_result", None)
    if cached is None and query and _has_terminal():
        try:
            cached = get_cell_size()
        except Exception:  # no terminal after all: fall through to the window size
            cached = None
    if cached is None:
        cached = _window_cell_size() or DEFAULT_CELL
        get_cell_size._result = cached  # type: ignore[attr-defined]  # textual-image's own cache
    return CellSize(cached[0], cached[1])


def _window_cell_size() -> CellSize | None:
    """The cell size from stdout's window size in pixels (no terminal query), if it gives one."""
    try:
        import fcntl
        import struct
        import termios

        if sys.__stdout__ is None or not sys.__stdout__.isatty():
            return None
        packed = fcntl.ioctl(sys.__stdout__.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        rows, cols, width, height = struct.unpack("HHHH", packed)
    except (ImportError, OSError, ValueError):
        return None
    if not (rows and cols and width and height):
        return None
    return CellSize(width // cols, height // rows)


# -- one panel's page, ready to draw -----------------------------------------------------------


def cells_image(pixels: np.ndarray, cells: tuple[int, int], cell: CellSize) -> Image.Image:
    """uint8 ``(H, W)`` pixels drawn over ``cells`` = (columns, lines) as half-blocks would be (one
    pixel a column, two a line), blown up by nearest neighbour to exactly the cells' pixels:
    ``(lines · cell.height, columns · cell.width)``, grey."""
    columns, lines = cells
    if pixels.shape[0] % 2:  # as half_block_pairs: the odd last row's lower half is black
        pixels = np.vstack([pixels, np.zeros_like(pixels[:1])])
    ys = np.arange(lines * cell.height) * pixels.shape[0] // (lines * cell.height)
    xs = np.arange(columns * cell.width) * pixels.shape[1] // (columns * cell.width)
    return Image.fromarray(np.ascontiguousarray(pixels[ys][:, xs]), mode="L")


_NO_OP = ((ControlType.CURSOR_FORWARD, 0),)
"""A control code that moves nothing: marks a segment Rich and Textual pass on as it is, zero cells wide."""


def control(text: str) -> Segment:
    """Escape sequences as a zero-width segment, written unchanged."""
    return Segment(text, None, _NO_OP)


@dataclass(eq=False)
class PanelArt:
    """One panel's page ready to draw: ``pixels`` (the page's uint8 ``(H, W)`` mosaic) over
    ``cells`` = (columns, lines), as ``lines`` of segments (``▀`` cells, kitty's placeholders,
    or blanks that a sixel image covers) and, for kitty and sixel, ``image``: the pixels at the
    cells' pixel size, which textual-image encodes."""

    mode: DrawMode
    pixels: np.ndarray
    cells: tuple[int, int]
    lines: list[list[Segment]]
    image: Image.Image | None = None
    renderable: Any = None  # textual-image's TGPImage or SixelImage of ``image``

    @cached_property
    def sixel(self) -> str:
        """The sixel data (DCS … ST) of ``image``, encoded once."""
        if self.image is None:
            raise ValueError(f"{self.mode} art has no image")
        return _renderables().sixel.image_to_sixels(self.image)

    def cleanup(self) -> None:
        """Free the image in the terminal (kitty keeps sent images until told)."""
        if self.renderable is not None:
            self.renderable.cleanup()


def panel_art(
    images: np.ndarray,
    per_row: int,
    tile: int,
    rows: range,
    cols: range,
    mode: DrawMode,
    console: Console | None = None,
) -> PanelArt:
    """``images`` uint8 ``(R · per_row, H, W)``'s tiles at ``rows × cols``, at ``tile`` pixels,
    drawn in ``mode``. Kitty's image is sent to the terminal (sys.__stdout__) here, as
    textual-image does when its renderable is first rendered."""
    return art_of(page_mosaic(images, per_row, tile, rows, cols), mode, console)


def art_of(pixels: np.ndarray, mode: DrawMode, console: Console | None = None) -> PanelArt:
    """A page's uint8 ``(H, W)`` mosaic drawn in ``mode``, over ``W`` columns and ``H/2`` lines."""
    cells = (pixels.shape[1], -(-pixels.shape[0] // 2))
    if mode == "halfblock":
        return PanelArt(mode, pixels, cells, half_block_segments(pixels))
    renderables = _renderables()
    image = cells_image(pixels, cells, cell_size())
    if mode == "kitty":
        renderable = renderables.TGPImage(image, width=cells[0], height=cells[1])
        console = console or Console(width=cells[0], force_terminal=True, color_system="truecolor")
        options = console.options.update(width=cells[0], height=cells[1])
        lines = console.render_lines(renderable, options, pad=False, new_lines=False)
        return PanelArt(mode, pixels, cells, lines, image, renderable)
    blank = [[Segment(" " * cells[0])] for _ in range(cells[1])]
    renderable = renderables.SixelImage(image, width=cells[0], height=cells[1])
    return PanelArt(mode, pixels, cells, blank, image, renderable)


# -- a grid of panels: labels, titles and art, the same in every mode ------------------------------


@dataclass
class Placed:
    """Art at (x, y): the cell of its top-left corner in a picture."""

    x: int
    y: int
    art: PanelArt


@dataclass
class Picture:
    """Lines of segments (``width`` cells each) and where each panel's art lies."""

    width: int
    lines: list[list[Segment]]
    placed: list[Placed]


TITLE_STYLE = Style(bold=True)


class _Canvas:
    """Pieces of text of known widths put at (x, y); lines padded with spaces to ``width``."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.pieces: dict[int, list[tuple[int, int, list[Segment]]]] = {}

    def put(self, x: int, y: int, segments: list[Segment], cells: int) -> None:
        """``segments`` ``cells`` wide at (x, y); the caller keeps them inside ``width``."""
        self.pieces.setdefault(y, []).append((x, cells, segments))

    def lines(self) -> list[list[Segment]]:
        """Each line ``width`` cells (widths are summed, not measured: lines are redrawn often)."""
        out: list[list[Segment]] = []
        for y in range(max(self.pieces, default=-1) + 1):
            line: list[Segment] = []
            at = 0
            for x, cells, segments in sorted(self.pieces.get(y, []), key=lambda piece: piece[0]):
                if x > at:
                    line.append(Segment(" " * (x - at)))
                line.extend(segments)
                at = max(at, x) + cells
            if at < self.width:
                line.append(Segment(" " * (self.width - at)))
            out.append(line)
        return out


def grid_picture(
    arts: Sequence[PanelArt],
    titles: Sequence[str],
    labels: Sequence[str],
    fit: Fit,
    status: Sequence[Sequence[str]],
    width: int,
    label_width: int | None = None,
) -> Picture:
    """The shown panels' ``arts`` laid out as ``fit`` says: each panel's title above it (the first,
    or the last side by side, followed by the first of the ``status`` wordings, longest first,
    that fits whole, else the parts of the last that fit), the shown rows' ``labels``
    right-aligned on the left beside the middle of their tiles, in ``label_width`` cells (the
    widest of all rows' labels and a space, so that paging does not move the art; by default
    those of ``labels``). A title or status part that does not fit is left out whole."""
    if label_width is None:
        label_width = max(map(len, labels), default=0) + 1
    canvas = _Canvas(width)
    origins = fit.origins(label_width)
    carrier = len(origins) - 1 if fit.arrangement == "side" else 0
    placed = []
    for i, ((x, y), art, title) in enumerate(zip(origins, arts, titles, strict=True)):
        last = i == len(origins) - 1 or fit.arrangement != "side"
        room = (width if last else origins[i + 1][0] - GAP_BEFORE_TITLE) - x
        header = _header(title, status if i == carrier else [], room)
        canvas.put(x, y, [Segment(header, TITLE_STYLE)], len(header))
        for j, line in enumerate(art.lines):
            canvas.put(x, y + 1 + j, line, art.cells[0])
        placed.append(Placed(x, y + 1, art))
        if i == 0 or fit.arrangement == "stacked":
            for row, label in enumerate(labels):
                text = label.rjust(label_width - 1)
                canvas.put(0, y + 1 + label_line(row, fit.tile), [Segment(text)], len(text))
    return Picture(width, canvas.lines(), placed)


GAP_BEFORE_TITLE = 1
"""Cells kept free between one side-by-side title and the next."""


def _header(title: str, wordings: Sequence[Sequence[str]], room: int) -> str:
    """``title`` and the first of the status ``wordings`` that fits ``room`` whole (else the leading
    parts of the last that fit)."""
    options = [[title, *parts] for parts in wordings] or [[title]]
    for parts in options:
        header = fit_parts(parts, room)
        if header == " · ".join(parts):
            return header
    return fit_parts(options[-1], room)


# -- printing a grid (cfg-tui sample --show) ----------------------------------------------------


def write_grid(
    panels: Sequence[tuple[str, np.ndarray]],
    row_labels: Sequence[str],
    per_row: int,
    mode: GraphicsMode | str = "auto",
    console: Console | None = None,
    width: int | None = None,
) -> DrawMode:
    """Print ``panels`` [(title, uint8 images ``(R · per_row, H, W)``)] one under the other, whole,
    each at the biggest tile (down to 8 pixels) whose ``per_row`` columns fit ``width`` (the
    console's by default); returns the mode drawn with (``auto`` asks the terminal).

    Half-blocks are text; kitty's images are sent to sys.__stdout__ (textual-image writes there)
    before their placeholders print; sixel images are drawn over the blank cells left for them,
    by textual-image's renderable, after the lines."""
    drawn = detect_mode(mode)
    if console is None:
        # Kitty's placeholders name their image by colour, which must not be rounded to 256 colours.
        console = (
            art_console() if drawn != "kitty" else Console(force_terminal=True, color_system="truecolor")
        )
    width = width or console.width
    label_width = max(map(len, row_labels), default=0) + 1
    tile = _widest_tile(panels[0][1].shape[-2], per_row, width - label_width)
    rows = len(row_labels)
    fit = Fit(tile, "stacked", rows, per_row, len(panels))
    arts = [
        panel_art(images, per_row, tile, range(rows), range(per_row), drawn, console) for _, images in panels
    ]
    # As wide as the art, not the console: no trailing blanks to wrap on a terminal as wide.
    picture = grid_picture(
        arts, [title for title, _ in panels], row_labels, fit, [[]], fit.size(label_width)[0]
    )
    for line in picture.lines:
        console.print(_text(line), soft_wrap=True)
    for placed in picture.placed:
        if placed.art.mode == "sixel":
            console.file.write(_sixel_over(placed, len(picture.lines), console))
    console.file.flush()
    return drawn


def _widest_tile(native: int, per_row: int, free: int) -> int:
    """The biggest tile size at which ``per_row`` tiles fit ``free`` columns (the smallest if none)."""
    sizes = tile_sizes(native)
    return next((t for t in sizes if Fit(t, "single", 1, per_row, 1).cells()[0] <= free), sizes[-1])


def _text(line: list[Segment]) -> Text:
    """Segments as one printable line (kitty's placeholders keep their colour: it is the image id)."""
    text = Text(no_wrap=True, overflow="ignore")
    for segment in line:
        text.append(segment.text, segment.style)
    return text


def _sixel_over(placed: Placed, printed: int, console: Console) -> str:
    """Escape sequences that draw ``placed``'s sixel image over its blank cells, ``printed`` lines
    above the cursor's line, and come back: textual-image's renderable draws from the line below
    the image (saving and restoring the cursor), so the cursor is taken there first."""
    columns, lines = placed.art.cells
    up = printed - placed.y - lines
    segments = console.render(placed.art.renderable, console.options.update(width=columns, height=lines))
    codes = "".join(s.text for s in segments if s.control)  # its blank lines are ours already
    before = (Control.move(0, -up).segment.text if up else "") + f"\x1b[{placed.x + 1}G"
    after = (Control.move(0, up).segment.text if up else "") + "\r"
    return before + codes + after
