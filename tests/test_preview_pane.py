"""The preview pane in a tiny app: the newest preview's pixels are drawn, a newer one replaces it,
a torn file changes nothing but a line, several runs share the pane, and every graphics mode draws
the same pixels.

The previews are made from known arrays (halves of black and white, greys, a checkerboard), so the
drawn ``▀`` cells say exactly which pixels are on screen."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.geometry import Region

import tui.graphics as graphics
import tui.widgets.preview_pane as preview_pane
from core.images import PAD
from tests.test_graphics import CELL, decode_sixel, percent
from tui.art import UPPER_HALF
from tui.widgets.preview_pane import IDLE, NO_PREVIEW, UNREADABLE, PreviewPane, fitted, newest_preview

PLACEHOLDER = chr(0x10EEEE)  # kitty's Unicode placeholder: one a cell of an image
H, W = 16, 32  # the previews' pixels: 8 lines of 32 cells at their own size


class PaneApp(App[None]):
    """Just the pane, filling the screen."""

    def compose(self) -> ComposeResult:
        yield PreviewPane(id="preview", classes="pane")


@pytest.fixture(autouse=True)
def no_graphics_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(graphics.ENV_VAR, raising=False)


def halves(left: int, right: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """uint8 ``shape``: the left half ``left``, the right half ``right``."""
    pixels = np.full(shape, right, np.uint8)
    pixels[:, : shape[1] // 2] = left
    return pixels


def write_preview(run: Path, step: int, pixels: np.ndarray) -> Path:
    """``pixels`` (uint8 ``(H, W)``) as the run's RGB preview at ``step``, as the trainer writes it."""
    path = run / "previews" / f"step-{step:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(path)
    return path


def make_run(tmp_path: Path, name: str = "run-a") -> Path:
    """A run whose previews are step 100 (white | black) and step 200 (black | white)."""
    run = tmp_path / name
    write_preview(run, 100, halves(255, 0))
    write_preview(run, 200, halves(0, 255))
    return run


def lines_of(pane: PreviewPane) -> list[list[Segment]]:
    return [list(pane.render_line(y)) for y in range(pane.size.height)]


def text_of(pane: PreviewPane) -> list[str]:
    return ["".join(s.text for s in line) for line in lines_of(pane)]


def cells(pane: PreviewPane) -> dict[tuple[int, int], tuple[int, int]]:
    """(x, y) → (upper, lower) grey of every ``▀`` cell drawn."""
    out = {}
    for y, line in enumerate(lines_of(pane)):
        x = 0
        for s in line:
            if s.text == UPPER_HALF:
                out[x, y] = (s.style.color.triplet[0], s.style.bgcolor.triplet[0])
            x += s.cell_length
    return out


def art_at(pane: PreviewPane, x0: int, y0: int, width: int, lines: int) -> np.ndarray:
    """The pixels the ``▀`` cells from (x0, y0) show: uint8 ``(2 · lines, width)``; a cell that is not
    a ``▀`` fails the test."""
    drawn = cells(pane)
    pixels = np.zeros((2 * lines, width), np.uint8)
    for y in range(lines):
        for x in range(width):
            assert (x0 + x, y0 + y) in drawn, f"no art at ({x0 + x}, {y0 + y})"
            pixels[2 * y : 2 * y + 2, x] = drawn[x0 + x, y0 + y]
    return pixels


async def shown(pilot, app: PaneApp, runs: list[Path]) -> PreviewPane:
    pane = app.query_one(PreviewPane)
    pane.show_runs(runs)
    await pilot.pause()
    return pane


# -- one run ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_newest_preview_is_drawn_and_a_newer_one_replaces_it(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    app = PaneApp()
    async with app.run_test(size=(40, 14)) as pilot:
        pane = await shown(pilot, app, [run])
        assert pane.steps == [200]
        assert text_of(pane)[0].rstrip() == "step 200"
        # Step 200's pixels at their own size under the title (not step 100's: the reverse).
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), halves(0, 255))
        assert len(cells(pane)) == W * H // 2

        newer = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (H, 1))  # a left-to-right ramp
        newer[: H // 2] = 255 - newer[: H // 2]  # and its reverse in the top half
        write_preview(run, 300, newer)
        assert pane.check() is True
        await pilot.pause()
        assert pane.steps == [300]
        assert text_of(pane)[0].rstrip() == "step 300"
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), newer)
        assert pane.check() is False  # nothing new


@pytest.mark.asyncio
async def test_a_png_is_decoded_once_per_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path)
    decoded: list[str] = []
    decode = preview_pane.decode

    def counting(path: Path) -> np.ndarray:
        decoded.append(path.name)
        return decode(path)

    monkeypatch.setattr(preview_pane, "decode", counting)
    app = PaneApp()
    async with app.run_test(size=(40, 14)) as pilot:
        pane = await shown(pilot, app, [run])
        for _ in range(10):
            pane.check()
            await pilot.pause()
        assert decoded == ["step-000200.png"]  # only the newest, once
        path = write_preview(run, 200, halves(50, 150))  # rewritten in place: another size and mtime
        os.utime(path, ns=(1, 1))
        pane.check()
        pane.check()
        await pilot.pause()
        assert decoded == ["step-000200.png"] * 2
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), halves(50, 150))
        pane.show_runs([run])  # asked again for the same run: nothing decoded again
        assert len(decoded) == 2


def test_the_newest_preview_is_found_by_step_number_not_name(tmp_path: Path) -> None:
    folder = tmp_path / "previews"
    folder.mkdir()
    for name in ("step-999999.png", "step-1000000.png", "step-000500.png"):
        (folder / name).write_bytes(b"x")
    # A half-written file (save_png's temporary name), another format, and a folder are not previews.
    (folder / ".step-2000000.png.abc.tmp").write_bytes(b"x")
    (folder / "step-3000000.jpg").write_bytes(b"x")
    (folder / "step-4000000.png").mkdir()
    newest = newest_preview(folder)
    assert newest is not None and (newest.step, newest.path.name) == (1_000_000, "step-1000000.png")
    assert newest_preview(tmp_path / "nowhere") is None


@pytest.mark.asyncio
async def test_a_torn_or_foreign_newest_file_keeps_the_picture_and_says_so(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    app = PaneApp()
    async with app.run_test(size=(60, 14)) as pilot:
        pane = await shown(pilot, app, [run])
        whole = write_preview(run, 300, halves(255, 0)).read_bytes()
        (run / "previews" / "step-000300.png").write_bytes(whole[: len(whole) // 2])  # torn
        assert pane.check() is True
        await pilot.pause()
        text = text_of(pane)
        assert text[0].rstrip() == "step 200"  # still the last picture that could be read
        assert text[1].startswith(f"{UNREADABLE}: step-000300.png")
        assert str(tmp_path) not in text[1] and len(text[1].rstrip()) <= 60
        assert np.array_equal(art_at(pane, 0, 2, W, H // 2), halves(0, 255))

        (run / "previews" / "step-000400.png").write_bytes(b"not a png at all")
        pane.check()
        await pilot.pause()
        assert text_of(pane)[1].startswith(f"{UNREADABLE}: step-000400.png")
        assert np.array_equal(art_at(pane, 0, 2, W, H // 2), halves(0, 255))

        write_preview(run, 500, halves(200, 100))
        pane.check()
        await pilot.pause()
        text = text_of(pane)
        assert text[0].rstrip() == "step 500" and UNREADABLE not in "".join(text)
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), halves(200, 100))


@pytest.mark.asyncio
async def test_a_foreign_file_before_any_picture_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run-a"
    (run / "previews").mkdir(parents=True)
    (run / "previews" / "step-000100.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    app = PaneApp()
    async with app.run_test(size=(40, 14)) as pilot:
        pane = await shown(pilot, app, [run])
        text = [line.rstrip() for line in text_of(pane)]
        assert text[0] == f"run-a · {NO_PREVIEW}"
        assert text[1].startswith(f"{UNREADABLE}: step-000100.png") and not cells(pane)


@pytest.mark.asyncio
async def test_without_previews_or_runs_the_pane_says_so(tmp_path: Path) -> None:
    started = tmp_path / "run-new"
    (started / "previews").mkdir(parents=True)
    app = PaneApp()
    async with app.run_test(size=(40, 14)) as pilot:
        pane = await shown(pilot, app, [started])
        assert text_of(pane)[0].rstrip() == f"run-new · {NO_PREVIEW}" and not cells(pane)
        pane = await shown(pilot, app, [tmp_path / "no-previews-folder"])
        assert text_of(pane)[0].rstrip() == f"no-previews-folder · {NO_PREVIEW}"
        pane = await shown(pilot, app, [])
        assert text_of(pane)[0].rstrip() == IDLE and pane.steps == []
        # The first preview arrives: the next check draws it.
        pane = await shown(pilot, app, [started])
        write_preview(started, 100, halves(0, 255))
        pane.check()
        await pilot.pause()
        assert text_of(pane)[0].rstrip() == "step 100"
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), halves(0, 255))


# -- fitting ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_big_preview_is_area_averaged_to_fit_with_its_aspect_and_refit_on_resize(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run-a"
    checker = ((np.indices((100, 200)).sum(axis=0) % 2) * 255).astype(np.uint8)  # 1-pixel squares
    write_preview(run, 100, checker)
    app = PaneApp()
    async with app.run_test(size=(40, 14)) as pilot:
        pane = await shown(pilot, app, [run])
        # 200 × 100 into 40 columns × 13 lines: the width binds, 40 × 20 pixels (the aspect kept).
        drawn = cells(pane)
        assert {x for x, _ in drawn} == set(range(40)) and {y for _, y in drawn} == set(range(1, 11))
        # Each pixel is the mean of a 5 × 5 block of squares: grey, never nearest's black or white.
        assert {value for pair in drawn.values() for value in pair} <= {122, 133}

        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        # Into 100 columns × 29 lines: the width binds again, 100 × 50 pixels, each a 2 × 2 mean.
        drawn = cells(pane)
        assert {x for x, _ in drawn} == set(range(100)) and {y for _, y in drawn} == set(range(1, 26))
        assert {value for pair in drawn.values() for value in pair} <= {127, 128}


def test_fitted_keeps_the_aspect_never_enlarges_and_keeps_rows_even() -> None:
    assert fitted((16, 32), 100, 30) == (16, 32)  # never enlarged
    assert fitted((100, 200), 40, 13) == (20, 40)  # the width binds
    assert fitted((100, 200), 100, 29) == (50, 100)  # 58 rows would do: the width binds again
    assert fitted((628, 272), 100, 29) == (58, 25)  # a preview's figure: the height binds
    assert fitted((21, 10), 100, 30) == (20, 10)  # an odd last row would be drawn over black
    assert fitted((16, 32), 0, 10) is None and fitted((16, 32), 10, 0) is None


@pytest.mark.asyncio
async def test_a_small_preview_stays_at_its_own_size_when_the_pane_grows(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    app = PaneApp()
    async with app.run_test(size=(40, 14)) as pilot:
        pane = await shown(pilot, app, [run])
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert pane.size.width == 120
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), halves(0, 255))
        assert len(cells(pane)) == W * H // 2


# -- several runs -----------------------------------------------------------------------------------


def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    first = make_run(tmp_path, "run-a")
    second = tmp_path / "run-b"
    write_preview(second, 50, halves(60, 180))
    return first, second


@pytest.mark.asyncio
async def test_two_runs_side_by_side_each_titled_above_its_picture(tmp_path: Path) -> None:
    first, second = two_runs(tmp_path)
    app = PaneApp()
    async with app.run_test(size=(80, 40)) as pilot:  # stacked would fit too: side by side compares
        pane = await shown(pilot, app, [first, second])
        assert pane.steps == [200, 50]
        header = text_of(pane)[0]
        assert header.startswith("run-a · step 200")
        x = header.index("run-b · step 50")
        assert x > W  # the second starts right of the first picture
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), halves(0, 255))
        assert np.array_equal(art_at(pane, x, 1, W, H // 2), halves(60, 180))
        assert len(cells(pane)) == 2 * W * H // 2

        # A new preview of one run redraws it, and leaves the other as it was.
        write_preview(second, 150, halves(180, 60))
        pane.check()
        await pilot.pause()
        assert "run-b · step 150" in text_of(pane)[0]
        assert np.array_equal(art_at(pane, x, 1, W, H // 2), halves(180, 60))
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), halves(0, 255))


@pytest.mark.asyncio
async def test_two_runs_stack_when_side_by_side_would_shrink_them(tmp_path: Path) -> None:
    first, second = two_runs(tmp_path)
    app = PaneApp()
    async with app.run_test(size=(40, 30)) as pilot:  # 19 columns each: under the pictures' 32
        pane = await shown(pilot, app, [first, second])
        text = text_of(pane)
        assert text[0].rstrip() == "run-a · step 200" and text[15].rstrip() == "run-b · step 50"
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), halves(0, 255))
        assert np.array_equal(art_at(pane, 0, 16, W, H // 2), halves(60, 180))


@pytest.mark.asyncio
async def test_runs_that_do_not_fit_readably_are_counted_not_squeezed(tmp_path: Path) -> None:
    first, second = two_runs(tmp_path)
    third = tmp_path / "run-c"
    write_preview(third, 10, halves(90, 90))
    app = PaneApp()
    async with app.run_test(size=(40, 14)) as pilot:  # neither 2 nor 3 keep 32 pixels: one, whole
        pane = await shown(pilot, app, [first, second, third])
        assert text_of(pane)[0].rstrip() == "run-a · step 200 · +2 more"
        assert np.array_equal(art_at(pane, 0, 1, W, H // 2), halves(0, 255))
        assert len(cells(pane)) == W * H // 2
        # 24 columns: a picture alone is 24 pixels wide, and two stacked keep that: two, worded shorter.
        await pilot.resize_terminal(24, 14)
        await pilot.pause()
        text = [line.rstrip() for line in text_of(pane)]
        assert (text[0], text[7]) == ("run-a · step 200", "run-b · 50 · +1")
        assert np.array_equal(art_at(pane, 0, 8, 24, 6), halves(60, 180, (12, 24)))
        await pilot.resize_terminal(14, 5)
        await pilot.pause()
        assert text_of(pane)[0] == "ru… · 200 · +2"  # the name cut, the step whole


# -- graphics modes ---------------------------------------------------------------------------------


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """textual-image's cell size fixed, and sys.__stdout__ (where it sends kitty's images) captured."""
    from textual_image._terminal import get_cell_size

    monkeypatch.setattr(get_cell_size, "_result", CELL, raising=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "__stdout__", out)
    return out


@pytest.mark.asyncio
async def test_every_mode_draws_the_same_pixels_under_the_same_titles(
    tmp_path: Path, terminal: io.StringIO
) -> None:
    first, second = two_runs(tmp_path)
    app = PaneApp()
    async with app.run_test(size=(80, 14)) as pilot:
        pane = await shown(pilot, app, [first, second])
        half_blocks = text_of(pane)
        x = half_blocks[0].index("run-b")

        pane.mode = "kitty"
        await pilot.pause()
        kitty = text_of(pane)
        assert pane.draw_mode == "kitty" and kitty[0] == half_blocks[0]
        assert sum(line.count(PLACEHOLDER) for line in kitty) == 2 * W * H // 2
        assert terminal.getvalue().count("a=p") == 2  # one placement a run

        pane.mode = "sixel"
        await pilot.pause()
        assert text_of(pane)[0] == half_blocks[0]
        strips = pane.render_lines(Region(0, 0, *pane.region.size))
        codes = [s.text for strip in strips for s in strip if s.control]
        assert len(codes) == 2
        for left, code, pixels in zip((0, x), codes, (halves(0, 255), halves(60, 180)), strict=True):
            assert code.startswith(f"\x1b[2;{left + 1}H\x1bP")  # line 1, the picture's first column
            painted = decode_sixel(code[code.index("\x1bP") :])
            ys = (np.arange(H) * 2 + 1) * CELL.height // 4
            xs = np.arange(W) * CELL.width + CELL.width // 2
            assert np.array_equal(painted[ys][:, xs], percent(pixels))

        with pytest.raises(ValueError):
            pane.mode = "retina"
        pane.mode = "halfblock"
        await pilot.pause()
        assert text_of(pane) == half_blocks


def test_the_mode_is_a_constructor_argument() -> None:
    assert PreviewPane().mode == "halfblock"
    assert PreviewPane(mode="sixel", id="preview", classes="pane").mode == "sixel"
    with pytest.raises(ValueError):
        PreviewPane(mode="retina")


def test_a_trainers_preview_is_drawn_as_its_tiles_a_digit_a_column(tmp_path: Path) -> None:
    """The figure's tiles, located by its text chunk, come back exactly, transposed: digit d's
    sample s is at row s, column d (title, labels and margins left out)."""
    from core.images import PAD, grid_figure, save_png, tiles_text
    from tui.widgets.preview_pane import Tiles, decode

    rows, cols, size = 10, 4, 28
    values = np.arange(rows * cols, dtype=np.float32).reshape(-1, 1, 1, 1) / (rows * cols)
    images = torch.from_numpy(values).expand(-1, 1, size, size) * 2 - 1  # tile i is one grey
    digits = [str(d) for d in range(rows)]
    path = save_png(grid_figure([("w = 3", images)], digits), tmp_path / "step-000010.png",
                    {"tiles": tiles_text(digits, cols)})  # fmt: skip
    tiles = decode(path)
    assert isinstance(tiles, Tiles) and (tiles.digits, tiles.samples) == (rows, cols)
    # Room for everything at full size: all digits across, every sample down.
    assert tiles.layout(400, 200) == (10, 4)
    pixels = tiles.mosaic(10, 4)
    assert pixels.shape == (PAD + cols * (size + PAD), PAD + rows * (size + PAD))
    for digit in range(rows):
        for sample in range(cols):
            y, x = PAD + sample * (size + PAD), PAD + digit * (size + PAD)
            tile = pixels[y : y + size, x : x + size]
            expected = round((values[digit * cols + sample, 0, 0, 0] * 2 - 1 + 1) / 2 * 255)
            assert np.abs(tile.astype(int) - expected).max() <= 1


def test_a_preview_in_little_room_keeps_every_digit_and_shows_fewer_samples_bigger() -> None:
    from tui.widgets.preview_pane import READABLE_TILE, Tiles

    images = np.stack([np.full((28, 28), i, np.uint8) for i in range(40)])  # digit d, sample s: 4d + s
    tiles = Tiles(images, 10, 4)
    # 48 × 40 pixels (an 80×24 screen's pane): 10 across would be 2-pixel tiles; 4 digits a row,
    # in 3 blocks, one sample each, gives 10-pixel tiles (the biggest there are here).
    across, samples = tiles.layout(48, 40)
    assert (across, samples) == (4, 1)
    pixels = tiles.mosaic(across, samples)
    assert pixels.shape == (PAD + 3 * (28 + PAD), PAD + 4 * (28 + PAD))
    firsts = [pixels[PAD + b * 30, PAD + c * 30] for b in range(3) for c in range(4)]
    assert firsts == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 0, 0]  # digit d's first sample; blanks after 9
    # 150 × 80 pixels: every digit across at 13 pixels, as many samples as stay readable (5 rows
    # would be too short): fewer samples rather than digits below READABLE_TILE.
    across, samples = tiles.layout(150, 80)
    assert across == 10 and samples == 4 and (150 - PAD) // 10 - PAD >= READABLE_TILE


def trainer_preview(run: Path, step: int) -> None:
    """A preview as a trainer writes it (10 digits × 4 samples, with its ``tiles`` chunk)."""
    from core.images import grid_figure, save_png, tiles_text

    images = torch.linspace(-1, 1, 40).reshape(40, 1, 1, 1).expand(40, 1, 28, 28)
    digits = [str(d) for d in range(10)]
    (run / "previews").mkdir(parents=True, exist_ok=True)
    figure = grid_figure([("w = 3", images)], digits)
    save_png(figure, run / "previews" / f"step-{step:06d}.png", {"tiles": tiles_text(digits, 4)})


@pytest.mark.asyncio
async def test_trainers_previews_are_compared_side_by_side_only_while_their_digits_stay_readable(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    trainer_preview(a, 100)
    trainer_preview(b, 200)
    app = PaneApp()
    async with app.run_test(size=(200, 40)) as pilot:
        pane = await shown(pilot, app, [a, b])
        assert text_of(pane)[0].startswith("a · step 100") and "b · step 200" in text_of(pane)[0]
        await pilot.resize_terminal(50, 10)  # two would be 2-pixel digits: one, and the other named
        await pilot.pause()
        assert text_of(pane)[0].startswith("a · step 100 · +1 more") and "b · " not in "".join(text_of(pane))
