"""A widget whose pictures may be sixel images: drawn as escape codes over their blank cells.

Textual knows nothing of sixel: a widget draws blank cells where an image goes, and the image's
escape codes are written at the start of the line below it (the lines above are drawn before them,
and that line's text, after them, covers none of them).
"""

from __future__ import annotations

from rich.control import Control
from rich.segment import Segment
from textual.dom import NoScreen
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from tui.graphics import DrawMode, Placed, control


class SixelWidget(Widget):
    """Subclasses say what is placed where (:meth:`placed_now`) and how it is drawn (:attr:`draw_mode`)."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._refresh_asked = False  # a sixel image cut by a partial redraw waits for a whole one

    @property
    def draw_mode(self) -> DrawMode:
        raise NotImplementedError

    def placed_now(self) -> list[Placed]:
        """The pictures drawn now and where, in the widget's cells."""
        raise NotImplementedError

    def render_lines(self, crop: Region) -> list[Strip]:
        """Lines as Textual draws them; with sixel, the images drawn over their blank cells."""
        strips = super().render_lines(crop)
        placed = self.placed_now()
        if not placed or self.draw_mode != "sixel" or not self._screen_shows_me():
            return strips
        if crop == self.region.reset_offset:
            self._refresh_asked = False
        below: dict[int, list[Segment]] = {}
        for art in placed:
            codes = self._sixel_codes(art, crop)
            if codes is not None:
                below.setdefault(codes[0] - crop.y, []).extend(codes[1])
        for y, codes in below.items():
            strips[y] = Strip([*codes, *strips[y]], strips[y].cell_length)
        return strips

    def _screen_shows_me(self) -> bool:
        """Whether this widget's screen is the one on top (a dialog over it must not be drawn over)."""
        try:
            return self.screen.is_active
        except NoScreen:
            return False

    def _sixel_codes(self, placed: Placed, crop: Region) -> tuple[int, list[Segment]] | None:
        """(line, segments): ``placed``'s sixel image, drawn from the start of the line below it, or
        None when it is outside ``crop`` (then a whole refresh is asked for if the crop cut it)."""
        gutter = self.styles.gutter
        columns, lines = placed.art.cells
        image = Region(gutter.left + placed.x, gutter.top + placed.y, columns, lines)
        below = image.bottom
        if not crop.overlaps(image):
            return None
        if not crop.y <= below < crop.bottom:
            if not self._refresh_asked:  # once: a widget always cut there is not refreshed forever
                self._refresh_asked = True
                self.call_after_refresh(self.refresh)
            return None
        origin = self.region.offset
        start = Control.move_to(origin.x + image.x, origin.y + image.y).segment.text
        back = Control.move_to(origin.x + crop.x, origin.y + below).segment.text
        return below, [control(start + placed.art.sixel + back)]
