from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.images import PAD, grid_figure, save_png, tile, to_uint8
from tui.art import half_block_pairs, shade_text


def test_to_uint8_maps_minus_one_to_black_and_one_to_white() -> None:
    x = torch.tensor([-1.0, 0.0, 1.0, 3.0, -7.0]).view(1, 1, 1, 5)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 128, 255, 255, 0]


def test_tile_places_images_row_major() -> None:
    images = torch.linspace(-1, 1, 6).view(6, 1, 1, 1).expand(6, 1, 4, 4)
    grid = np.asarray(tile(images, cols=3))
    assert grid.shape == (PAD + 2 * (4 + PAD), PAD + 3 * (4 + PAD))
    expected = to_uint8(images[:, :, :1, :1]).reshape(6)
    for i in range(6):
        r, c = divmod(i, 3)
        y, x = PAD + r * (4 + PAD), PAD + c * (4 + PAD)
        assert (grid[y : y + 4, x : x + 4] == expected[i]).all()


def test_guidance_figure_has_one_panel_per_scale(tmp_path: Path) -> None:
    rows, cols, size, scale = 3, 4, 8, 2
    bright = torch.ones(rows * cols, 1, size, size)
    panels = [("w = 1", -bright), ("w = 3", bright)]
    fig = grid_figure(panels, ["0", "1", "null"], scale=scale)
    panel_w = (PAD + cols * (size + PAD)) * scale
    assert fig.width > 2 * panel_w and fig.height > (PAD + rows * (size + PAD)) * scale
    # The right panel is white where the left one is black, at the same offset.
    grey = np.asarray(fig.convert("L"))
    first_tile_y = fig.height - (PAD + rows * (size + PAD)) * scale + PAD * scale + 2
    right_tile_x = fig.width - panel_w + PAD * scale + 2
    left_tile_x = right_tile_x - panel_w - 8 * scale
    assert grey[first_tile_y, right_tile_x] == 255
    assert grey[first_tile_y, left_tile_x] == 0
    out = save_png(fig, tmp_path / "fig.png")
    assert Image.open(out).size == fig.size


def test_save_png_to_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        save_png(Image.new("L", (2, 2)), tmp_path / "missing" / "x.png")


def test_half_block_pairs_put_even_rows_on_top() -> None:
    pixels = np.arange(15, dtype=np.uint8).reshape(5, 3)
    pairs = half_block_pairs(pixels)
    assert pairs.shape == (3, 3, 2)
    assert pairs[1, 2].tolist() == [pixels[2, 2], pixels[3, 2]]
    assert pairs[2, 0].tolist() == [pixels[4, 0], 0]  # odd height: black below


def test_shade_text_maps_dark_to_space_and_light_to_at() -> None:
    pixels = np.array([[0, 255, 128], [0, 255, 128]], dtype=np.uint8)
    assert shade_text(pixels) == [" @+"]
