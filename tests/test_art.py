import numpy as np

from tui.art import UPPER_HALF, half_block_lines, labelled_text


def test_half_block_cells_carry_upper_and_lower_pixels_as_colours() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5), dtype=np.uint8)
    lines = half_block_lines(pixels)
    assert len(lines) == 3 and all(line.plain == UPPER_HALF * 5 for line in lines)
    for row, line in enumerate(lines):
        for col, span in enumerate(line.spans):
            upper, lower = pixels[2 * row, col], pixels[2 * row + 1, col]
            assert span.style.color.triplet == (upper, upper, upper)
            assert span.style.bgcolor.triplet == (lower, lower, lower)


def test_labels_sit_beside_the_middle_of_their_row() -> None:
    lines = ["." * 4] * 8  # 16 pixel rows: two rows of tiles, 8 pixels each
    text = labelled_text(lines, "w = 3", ["0", "null"], row_height=8).plain.splitlines()
    assert text[0].strip() == "w = 3"
    assert text[1 + 2].startswith("   0 ") and text[1 + 6].startswith("null ")
    assert all(line.endswith("....") for line in text[1:])


def test_greys_land_on_the_256_colour_grey_ramp() -> None:
    from rich.color import ColorSystem

    from tui.art import _grey

    for value in range(8, 248, 7):
        number = _grey(value).downgrade(ColorSystem.EIGHT_BIT).number
        assert number is not None and 232 <= number <= 255, (value, number)
    assert _grey(0).downgrade(ColorSystem.EIGHT_BIT).number == 16  # black of the colour cube


def test_tile_sizes_halve_down_to_eight_pixels() -> None:
    from tui.art import tile_sizes

    assert tile_sizes(32) == [32, 16, 8]
    assert tile_sizes(16) == [16, 8]
    assert tile_sizes(28) == [28, 14]  # 7 would be below 8
    assert tile_sizes(6) == [6]


def test_fit_grid_prefers_the_whole_grid_at_the_biggest_tile_then_pages_at_the_smallest() -> None:
    from tui.art import fit_grid, panel_cells

    tiles = [32, 16, 8]
    # Everything at 32 pixels: 3 panels of 2 × 2 tiles side by side need 3 · 70 + 2 + 5 columns.
    width = 5 + 3 * panel_cells(32, 2, 2)[0] + 2
    height = 1 + panel_cells(32, 2, 2)[1]
    fit = fit_grid(width, height, (3, 2, 2), 5, tiles)
    assert fit is not None and (fit.tile, fit.arrangement, fit.shown) == (32, "side", 12)
    # One column less: not side by side at 32; stacked needs 3 · 36 lines; so 16 side by side.
    fit = fit_grid(width - 1, height, (3, 2, 2), 5, tiles)
    assert fit is not None and (fit.tile, fit.arrangement, fit.shown) == (16, "side", 12)
    # Tall and narrow: stacked.
    fit = fit_grid(5 + panel_cells(32, 2, 2)[0], 3 * height, (3, 2, 2), 5, tiles)
    assert fit is not None and (fit.tile, fit.arrangement) == (32, "stacked")
    # Too small for the whole grid even at 8: paged at 8, one panel with every column it can hold.
    fit = fit_grid(40, 12, (3, 11, 4), 5, tiles)
    assert fit is not None and (fit.tile, fit.arrangement) == (8, "single")
    assert (fit.rows, fit.cols) == (2, 3) and fit.size(5)[0] <= 40 and fit.size(5)[1] <= 12
    assert fit_grid(12, 3, (3, 11, 4), 5, tiles) is None  # not one tile


def test_fit_parts_keeps_whole_parts_only() -> None:
    from tui.art import fit_parts

    parts = ["w = 3", "panel 2/3", "rows 1-6/11"]
    assert fit_parts(parts, 100) == "w = 3 · panel 2/3 · rows 1-6/11"
    assert fit_parts(parts, 20) == "w = 3 · panel 2/3"
    assert fit_parts(parts, 4) == ""
