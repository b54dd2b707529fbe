"""The sample grid in a tiny app: what fits, paging every way, zoom, the wheel, and graphics modes.

Each tile is one grey (its own), so the rendered cells say which tiles are on screen and whether
each is drawn whole."""

from __future__ import annotations

import io
import sys
from collections import Counter

import numpy as np
import pytest
from rich.segment import Segment
from textual import events
from textual.app import App, ComposeResult
from textual.geometry import Region

import tui.graphics as graphics
from tests.test_graphics import CELL, decode_sixel, percent
from tui.art import UPPER_HALF, label_line, page_mosaic
from tui.widgets.image_grid import TOO_SMALL, GridPanel, ImageGrid

PLACEHOLDER = chr(0x10EEEE)  # kitty's Unicode placeholder: one a cell of an image
REQUEST = (3, 11, 4)  # panels (w = 1, 3, 5), rows (0-9 and null), columns
SMALL = (1, 3, 4)


class GridApp(App[None]):
    """Just the grid, filling the screen."""

    def __init__(self, graphics: str = "halfblock") -> None:
        super().__init__()
        self.graphics = graphics

    def compose(self) -> ComposeResult:
        yield ImageGrid(graphics=self.graphics)


@pytest.fixture(autouse=True)
def no_graphics_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(graphics.ENV_VAR, raising=False)


def grey(panel: int, row: int, col: int, per_row: int) -> int:
    """Tile (panel, row, col)'s grey: distinct, never 0 (black is the padding)."""
    return 1 + panel * 60 + row * per_row + col


def labels_for(rows: int) -> list[str]:
    return [str(i) for i in range(rows - 1)] + ["null"]


def request(shape: tuple[int, int, int], size: int = 32) -> tuple[list[GridPanel], list[str], int]:
    panels, rows, cols = shape
    out = []
    for p in range(panels):
        greys = [grey(p, r, c, cols) for r in range(rows) for c in range(cols)]
        images = np.array(greys, dtype=np.uint8)[:, None, None] * np.ones((size, size), np.uint8)
        out.append(GridPanel(f"w = {2 * p + 1}", images))
    return out, labels_for(rows), cols


def lines_of(grid: ImageGrid) -> list[list[Segment]]:
    return [list(grid.render_line(y)) for y in range(grid.size.height)]


def text_of(grid: ImageGrid) -> list[str]:
    return ["".join(s.text for s in line) for line in lines_of(grid)]


def drawn(grid: ImageGrid) -> Counter[int]:
    """How many ``▀`` cells have each grey on top: a whole tile of t pixels has t · t/2."""
    return Counter(s.style.color.triplet[0] for line in lines_of(grid) for s in line if s.text == UPPER_HALF)


def shown_tiles(grid: ImageGrid, shape: tuple[int, int, int]) -> set[tuple[int, int, int]]:
    """(panel, row, col) of the tiles drawn, each checked to be drawn whole."""
    panels, rows, cols = shape
    where = {grey(p, r, c, cols): (p, r, c) for p in range(panels) for r in range(rows) for c in range(cols)}
    counts = drawn(grid)
    tile = grid.tile
    assert tile is not None
    for value, count in counts.items():
        if value in where:
            assert count == tile * tile // 2, (
                f"tile {where[value]} drawn {count} cells, not {tile * tile // 2}"
            )
    return {where[v] for v in counts if v in where}


def everything(shape: tuple[int, int, int]) -> set[tuple[int, int, int]]:
    panels, rows, cols = shape
    return {(p, r, c) for p in range(panels) for r in range(rows) for c in range(cols)}


async def _shown(pilot, grid: ImageGrid, shape: tuple[int, int, int], **show: int) -> None:
    grid.show(*request(shape, **show))
    await pilot.pause()


# -- fitting -------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("size", "shape", "tile", "arrangement"),
    [
        ((200, 60), REQUEST, 8, "side"),  # whole: 3 × 42 columns of 8-pixel tiles; 16 are too tall
        ((80, 24), REQUEST, 8, "single"),  # paged at the smallest tile
        ((60, 20), REQUEST, 8, "single"),
        ((200, 60), SMALL, 32, "single"),  # whole at full size
        ((80, 24), SMALL, 8, "single"),  # 16-pixel rows are 28 lines
        ((60, 20), SMALL, 8, "single"),
    ],
)
async def test_the_tile_size_and_arrangement_fit_the_widget(
    size: tuple[int, int], shape: tuple[int, int, int], tile: int, arrangement: str
) -> None:
    app = GridApp()
    async with app.run_test(size=size) as pilot:
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, shape)
        fit = grid.fit
        assert fit is not None and (fit.tile, fit.arrangement) == (tile, arrangement)
        assert grid.tile_images().shape[1:] == (tile, tile)
        text = text_of(grid)
        assert all(len(line) <= size[0] for line in text)
        shown = shown_tiles(grid, shape)
        whole = shown == everything(shape)
        assert whole == (len(shown) == fit.shown == np.prod(shape))
        if whole and tile < 32:  # a bigger tile would not have shown everything
            bigger = grid.fit_for(2 * tile)
            assert bigger is None or bigger.shown < np.prod(shape)
        if not whole:
            assert tile == 8 and grid.rows_that_fit() < shape[1]
        parts = grid.status_parts()
        assert f"{tile} px" in parts and "zoom" not in grid.status
        assert (f"panel 1/{shape[0]}" in parts) == (arrangement == "single" and shape[0] > 1)
        assert f"rows {'1-' if fit.rows > 1 else ''}{fit.rows}/{shape[1]}" in parts


@pytest.mark.asyncio
async def test_side_by_side_each_panel_has_its_title_above_it() -> None:
    app = GridApp()
    async with app.run_test(size=(200, 60)) as pilot:
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, REQUEST)
        header = text_of(grid)[0]
        starts = [header.index(f"w = {w}") for w in (1, 3, 5)]
        assert starts == sorted(starts) and starts[0] == len("null ")
        # Each title starts at its panel's first column of art (the padding of its mosaic).
        art_line = text_of(grid)[1]
        for start in starts:
            assert art_line[start] == UPPER_HALF and (start == 0 or art_line[start - 1] != UPPER_HALF)
        assert header.rstrip().endswith("rows 1-11/11 · cols 1-4/4 · 8 px")
        # Labels beside the middle of their rows, right-aligned, in full.
        text = text_of(grid)
        for row, label in enumerate(labels_for(11)):
            assert text[1 + label_line(row, 8)][:5] == label.rjust(4) + " "


@pytest.mark.asyncio
async def test_when_all_panels_do_not_fit_side_by_side_as_many_as_fit_do_and_turn() -> None:
    app = GridApp()
    async with app.run_test(size=(100, 30)) as pilot:  # 2 panels of 4 columns at 8 pixels: 90 columns
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, REQUEST)
        fit = grid.fit
        assert fit is not None and (fit.tile, fit.arrangement, fit.panels, fit.cols) == (8, "side", 2, 4)
        windows = []
        for _ in range(3):
            windows.append(sorted({p for p, _, _ in shown_tiles(grid, REQUEST)}))
            assert f"panels {windows[-1][0] + 1}-{windows[-1][1] + 1}/3" in grid.status_parts()
            grid.turn(1)
            await pilot.pause()
        assert windows == [[0, 1], [1, 2], [0, 1]]  # every turn shows another; after the last, the first
        assert grid.visible_panels() == [1, 2]  # the third turn
        grid.turn(-1)
        grid.turn(-1)  # back round the start
        await pilot.pause()
        assert grid.visible_panels() == [1, 2]
        assert text_of(grid)[0].strip().startswith("w = 3 ")  # the first shown panel's title


# -- paging --------------------------------------------------------------------------------------


async def _every_page(pilot, grid: ImageGrid, shape: tuple[int, int, int]) -> list[set]:
    """Every panel × row page × column page, by turn, page and page_cols; the tiles on each."""
    pages = []
    for _ in range(shape[0] if grid.fit and grid.fit.panels < shape[0] else 1):
        grid.first_row = 0
        while True:
            grid.first_col = 0
            while True:
                await pilot.pause()
                pages.append(shown_tiles(grid, shape))
                before = grid.visible_cols()
                grid.page_cols(1)
                if grid.visible_cols() == before:
                    break
            before = grid.visible_rows()
            grid.page(1)
            if grid.visible_rows() == before:
                break
        grid.turn(1)
    return pages


@pytest.mark.asyncio
@pytest.mark.parametrize(("size", "zoom"), [((80, 24), 0), ((60, 20), 1), ((60, 20), 2), ((100, 30), 0)])
async def test_paging_rows_columns_and_panels_reaches_every_image(size: tuple[int, int], zoom: int) -> None:
    app = GridApp()
    async with app.run_test(size=size) as pilot:
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, REQUEST)
        grid.zoom(zoom)
        await pilot.pause()
        fit = grid.fit
        assert fit is not None and fit.shown < np.prod(REQUEST)  # something to page
        if zoom:
            assert fit.cols < REQUEST[2]  # columns too
        pages = await _every_page(pilot, grid, REQUEST)
        assert set().union(*pages) == everything(REQUEST)
        assert all(len(page) == fit.shown for page in pages)  # every page full, none cut


@pytest.mark.asyncio
async def test_pages_keep_the_art_still_and_the_title_says_what_is_shown() -> None:
    app = GridApp()
    async with app.run_test(size=(60, 20)) as pilot:
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, REQUEST)
        grid.zoom(1)  # 16 pixels: 2 rows and 2 columns a page
        await pilot.pause()
        first_art = [line.find(UPPER_HALF) for line in text_of(grid)[1:] if UPPER_HALF in line]
        grid.page(1)
        grid.page_cols(1)
        grid.turn(1)
        await pilot.pause()
        text = text_of(grid)
        assert [line.find(UPPER_HALF) for line in text[1:] if UPPER_HALF in line] == first_art
        assert set(first_art) == {len("null ")}
        # In full 61 cells, wider than the widget: the terse wording, whole.
        assert grid.status == "w = 3 · panel 2/3 · rows 3-4/11 · cols 3-4/4 · 16 px zoom"
        assert text[0].strip() == "w = 3 · 2/3 · r 3-4/11 · c 3-4/4 · 16px zoom"
        assert {r for _, r, _ in shown_tiles(grid, REQUEST)} == {2, 3}
        labels = [line[:5].strip() for line in text[1:] if line[:5].strip()]
        assert labels == ["2", "3"]
        grid.page(100)  # the last page stays full
        grid.page_cols(-100)
        await pilot.pause()
        assert grid.visible_rows() == range(9, 11) and grid.visible_cols() == range(0, 2)
        assert "rows 10-11/11" in grid.status


@pytest.mark.asyncio
async def test_the_wheel_moves_rows_and_with_shift_columns() -> None:
    app = GridApp()
    async with app.run_test(size=(60, 20)) as pilot:
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, REQUEST)
        grid.zoom(1)
        await pilot.pause()

        def wheel(event: type[events.MouseEvent], shift: bool = False) -> None:
            grid.post_message(event(grid, 10, 5, 0, 1, 0, shift, False, False))

        wheel(events.MouseScrollDown)
        wheel(events.MouseScrollDown)
        await pilot.pause()
        assert grid.visible_rows().start == 2 and "rows 3-4/11" in grid.status
        wheel(events.MouseScrollUp)
        wheel(events.MouseScrollDown, shift=True)
        await pilot.pause()
        assert grid.visible_rows().start == 1 and grid.visible_cols().start == 1
        assert {(r, c) for _, r, c in shown_tiles(grid, REQUEST)} == {(1, 1), (1, 2), (2, 1), (2, 2)}


# -- zoom ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_zoom_overrides_the_fitted_tile_size_and_zoom_zero_fits_again() -> None:
    app = GridApp()
    async with app.run_test(size=(200, 60)) as pilot:
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, REQUEST)
        assert grid.tile == 8 and grid.status.endswith("8 px")
        sizes = []
        for delta in (1, 1, 1, -1):
            grid.zoom(delta)
            await pilot.pause()
            sizes.append(grid.tile)
            assert grid.status.endswith(f"{grid.tile} px zoom") and text_of(grid)[0].rstrip().endswith("zoom")
            tiles = {grey: cells for grey, cells in drawn(grid).items() if grey}  # not the black padding
            assert set(tiles.values()) == {grid.tile * grid.tile // 2}  # tiles drawn at that size
        assert sizes == [16, 32, 32, 16]
        assert shown_tiles(grid, REQUEST) < everything(REQUEST)  # 16 pixels do not hold it all
        grid.zoom(0)
        await pilot.pause()
        assert grid.tile == 8 and grid.zoom_tile is None and "zoom" not in text_of(grid)[0]
        assert shown_tiles(grid, REQUEST) == everything(REQUEST)


@pytest.mark.asyncio
async def test_sixteen_pixel_images_fit_at_sixteen_and_eight() -> None:
    app = GridApp()
    async with app.run_test(size=(100, 40)) as pilot:  # 2 panels of 38 columns and 29 lines at 16
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, (2, 3, 2), size=16)
        assert grid.tile == 16 and shown_tiles(grid, (2, 3, 2)) == everything((2, 3, 2))
        grid.zoom(1)  # no bigger tile than the images
        await pilot.pause()
        assert grid.tile == 16
        grid.zoom(-5)
        await pilot.pause()
        assert grid.tile == 8


# -- edges ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_nothing_is_cut_mid_word_on_a_narrow_widget() -> None:
    app = GridApp()
    async with app.run_test(size=(24, 12)) as pilot:
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, REQUEST)
        header = text_of(grid)[0].strip()
        parts = ["w = 1", *grid.status_parts(wording=2)]  # the tersest wording, then whole parts dropped
        assert header and " · ".join(parts[: header.count(" · ") + 1]) == header  # whole parts only
        assert all(len(line) <= 24 for line in text_of(grid))
        await pilot.resize_terminal(7, 3)
        await pilot.pause()
        assert grid.fit is None
        shown = text_of(grid)[0].rstrip()
        assert shown and TOO_SMALL.startswith(shown) and TOO_SMALL[len(shown)] == " "  # whole words


@pytest.mark.asyncio
async def test_a_trajectory_frame_is_drawn_and_counted() -> None:
    app = GridApp()
    async with app.run_test(size=(200, 60)) as pilot:
        grid = app.query_one(ImageGrid)
        panels, labels, per_row = request(SMALL)
        images = panels[0].images
        panels[0].frames = np.stack([255 - images, images // 2, images])
        grid.show(panels, labels, per_row)
        grid.frame = 0
        await pilot.pause()
        assert "frame 1/3" in grid.status_parts()
        assert set(drawn(grid)) - {0} == {255 - grey(0, r, c, 4) for r in range(3) for c in range(4)}
        grid.frame = None  # the result again
        await pilot.pause()
        assert set(drawn(grid)) - {0} == {grey(0, r, c, 4) for r in range(3) for c in range(4)}


# -- graphics modes ------------------------------------------------------------------------------


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """textual-image's cell size fixed, and sys.__stdout__ (where it sends kitty's images) captured."""
    from textual_image._terminal import get_cell_size

    monkeypatch.setattr(get_cell_size, "_result", CELL, raising=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "__stdout__", out)
    return out


@pytest.mark.asyncio
async def test_every_mode_shows_the_same_labels_titles_and_pixels(terminal: io.StringIO) -> None:
    app = GridApp()
    async with app.run_test(size=(200, 60)) as pilot:
        grid = app.query_one(ImageGrid)
        await _shown(pilot, grid, REQUEST)
        fit = grid.fit
        half_blocks = text_of(grid)
        labels_and_titles = [_blank_art(line) for line in half_blocks]

        grid.graphics = "kitty"
        await pilot.pause()
        assert grid.draw_mode == "kitty" and grid.fit == fit
        kitty = text_of(grid)
        assert [_blank_art(line) for line in kitty] == labels_and_titles
        assert sum(line.count(PLACEHOLDER) for line in kitty) == sum(
            line.count(UPPER_HALF) for line in half_blocks
        )
        assert terminal.getvalue().count("a=p") == 3  # one placement a panel

        grid.graphics = "sixel"
        await pilot.pause()
        assert grid.draw_mode == "sixel" and grid.fit == fit  # 57 lines: one to spare below the art
        assert [_blank_art(line) for line in text_of(grid)] == labels_and_titles
        strips = grid.render_lines(Region(0, 0, *grid.region.size))
        codes = [s.text for strip in strips for s in strip if s.control]
        assert len(codes) == 3
        x0 = len("null ")
        for panel, code in enumerate(codes):
            x = x0 + panel * (fit.cells()[0] + 1)
            assert code.startswith(f"\x1b[2;{x + 1}H\x1bP")  # line 1, the art's first column
            pixels = page_mosaic(grid.panels[panel].images, 4, 8, range(11), range(4))
            columns, lines = fit.cells()
            painted = decode_sixel(code[code.index("\x1bP") :])
            ys = (np.arange(2 * lines) * 2 + 1) * CELL.height // 4
            xs = np.arange(columns) * CELL.width + CELL.width // 2
            assert np.array_equal(painted[ys][:, xs], percent(pixels))

        with pytest.raises(ValueError):
            grid.graphics = "retina"
        grid.graphics = "halfblock"
        await pilot.pause()
        assert text_of(grid) == half_blocks


def _blank_art(line: str) -> str:
    """``line`` with the art's cells as spaces: half-blocks, and kitty's placeholders (their marks,
    combining characters, dropped): what is left is labels and titles."""
    kept = [" " if char in (UPPER_HALF, PLACEHOLDER) else char for char in line]
    return "".join(char for char in kept if char == " " or ord(char) < 0x300)
