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
