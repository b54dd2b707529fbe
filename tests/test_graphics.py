"""Half-blocks, kitty's graphics protocol and sixel draw the same pixels; detection is safe."""

from __future__ import annotations

import base64
import io
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from rich.segment import Segment

import tui.graphics as graphics
from core.images import PAD
from tui.art import UPPER_HALF, page_mosaic, shrink
from tui.graphics import CellSize, cells_image, detect_mode, panel_art, write_grid

CELL = CellSize(10, 20)
"""Each mosaic pixel is a 10 × 10 block of the terminal's pixels (half a 10 × 20 cell)."""


@pytest.fixture
def cell(monkeypatch: pytest.MonkeyPatch) -> Iterator[CellSize]:
    """textual-image's cell size fixed to :data:`CELL` (as if the terminal had said so)."""
    from textual_image._terminal import get_cell_size

    monkeypatch.setattr(get_cell_size, "_result", CELL, raising=False)
    yield CELL


@pytest.fixture
def terminal_out(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """sys.__stdout__, where textual-image sends kitty's images, as a string."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "__stdout__", out)
    return out


def random_images(n: int = 12, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


# -- decoders: what a terminal would show --------------------------------------------------------


def decode_half_blocks(lines: list[list[Segment]]) -> np.ndarray:
    """``▀`` cells → uint8 ``(2·lines, W)``: the foreground is the upper pixel, the background the lower."""
    rows = []
    for line in lines:
        cells = [s for s in line if s.text]
        assert all(s.text == UPPER_HALF for s in cells)
        rows.append([s.style.color.triplet[0] for s in cells])
        rows.append([s.style.bgcolor.triplet[0] for s in cells])
    return np.array(rows, dtype=np.uint8)


KITTY = re.compile(r"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")


def kitty_images(out: str) -> dict[int, np.ndarray]:
    """Kitty graphics transmissions in ``out`` → {image id: pixels}, chunks joined (m=1: more)."""
    chunks: dict[int, list[str]] = {}
    formats: dict[int, str] = {}
    for keys, payload in KITTY.findall(out):
        fields = dict(kv.split("=") for kv in keys.split(","))
        if fields.get("a", "t") != "t" or "i" not in fields:
            continue  # placements (a=p) and deletions (a=d)
        chunks.setdefault(int(fields["i"]), []).append(payload)
        formats.setdefault(int(fields["i"]), fields.get("f", "32"))
    images = {}
    for image_id, parts in chunks.items():
        data = base64.b64decode("".join(parts))
        assert formats[image_id] == "100"  # textual-image sends PNG
        images[image_id] = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    return images


SIXEL_TOKEN = re.compile(
    r'"\d+;\d+;(\d+);(\d+)|#(\d+)(?:;2;(\d+);(\d+);(\d+))?|!(\d+)([?-~])|([?-~])|(\$)|(-)'
)


def decode_sixel(data: str) -> np.ndarray:
    """Sixel data (DCS … q … ST) → ``(H, W)`` grey levels in percent, as the terminal paints them:
    each colour pass sets the pixels of its bits, later passes over earlier ones."""
    body = data[data.index("q") + 1 : data.rindex("\x1b\\")]
    palette: dict[int, int] = {}
    canvas = None
    colour = x = band = 0
    for match in SIXEL_TOKEN.finditer(body):
        width, height, register, red, _, _, count, repeated, single, cr, nl = match.groups()
        if width:
            canvas = np.full((int(height), int(width)), -1, dtype=int)
        elif register:
            colour = int(register)
            if red is not None:
                palette[colour] = int(red)
        elif cr:
            x = 0
        elif nl:
            x, band = 0, band + 1
        else:
            char, times = (repeated, int(count)) if repeated else (single, 1)
            bits = ord(char) - 0x3F
            for bit in range(6):
                if bits & (1 << bit) and 6 * band + bit < canvas.shape[0]:
                    canvas[6 * band + bit, x : x + times] = palette[colour]
            x += times
    assert canvas is not None and (canvas >= 0).all()
    return canvas


def percent(pixels: np.ndarray) -> np.ndarray:
    """Grey levels as sixel's colour registers hold them (0-100, rounded as textual-image does)."""
    return (pixels.astype(int) * 100 + 127) // 255


def centres(image: np.ndarray, columns: int, lines: int) -> np.ndarray:
    """The pixel at the centre of each half cell: a ``(2·lines, columns)`` image."""
    ys = (np.arange(2 * lines) * 2 + 1) * image.shape[0] // (4 * lines)
    xs = (np.arange(columns) * 2 + 1) * image.shape[1] // (2 * columns)
    return image[ys][:, xs]


# -- the same pixels in every mode ---------------------------------------------------------------


def test_the_page_mosaic_is_the_chosen_tiles_shrunk_by_two_by_two_means() -> None:
    images = random_images()  # 3 rows × 4 columns
    pixels = page_mosaic(images, 4, 16, range(1, 3), range(2, 4))
    assert pixels.shape == (PAD + 2 * (16 + PAD), PAD + 2 * (16 + PAD))
    tile = pixels[PAD : PAD + 16, PAD + 18 : PAD + 34]  # row 1, column 3 of the request
    expected = images[1 * 4 + 3].reshape(16, 2, 16, 2).mean(axis=(1, 3)).round()
    assert np.array_equal(tile, expected.astype(np.uint8))
    assert np.array_equal(shrink(images, 8), shrink(shrink(images, 16), 8))


def test_half_blocks_decode_to_the_page_mosaic() -> None:
    images = random_images()
    art = panel_art(images, 4, 16, range(0, 2), range(1, 4), "halfblock")
    assert np.array_equal(art.pixels, page_mosaic(images, 4, 16, range(0, 2), range(1, 4)))
    assert np.array_equal(decode_half_blocks(art.lines), art.pixels)
    assert art.cells == (art.pixels.shape[1], art.pixels.shape[0] // 2) and art.image is None


def test_kitty_sends_the_page_mosaic_as_png_and_places_it_with_placeholders(
    cell: CellSize, terminal_out: io.StringIO
) -> None:
    images = random_images()
    art = panel_art(images, 4, 8, range(0, 3), range(0, 2), "kitty")
    sent = kitty_images(terminal_out.getvalue())
    assert len(sent) == 1
    ((image_id, decoded),) = sent.items()
    columns, lines = art.cells
    assert decoded.shape == (lines * cell.height, columns * cell.width)
    assert np.array_equal(decoded, np.asarray(art.image))  # textual-image resized nothing
    assert np.array_equal(centres(decoded, columns, lines), art.pixels)
    assert np.array_equal(art.pixels, page_mosaic(images, 4, 8, range(0, 3), range(0, 2)))
    # The cells hold kitty's placeholder, coloured with the image id, one per cell.
    assert len(art.lines) == lines
    for line in art.lines:
        text = "".join(s.text for s in line)
        assert text.count(chr(0x10EEEE)) == columns
        triplet = line[0].style.color.triplet
        assert (triplet.red << 16) | (triplet.green << 8) | triplet.blue == image_id & 0xFFFFFF
    art.cleanup()
    assert f"a=d,I={image_id}" in terminal_out.getvalue()  # freed in the terminal


def test_sixel_encodes_the_page_mosaic(cell: CellSize, monkeypatch: pytest.MonkeyPatch) -> None:
    import textual_image.renderable.sixel as sixel

    encoded: list[Image.Image] = []
    encode = sixel.image_to_sixels
    monkeypatch.setattr(
        sixel, "image_to_sixels", lambda image, *a: encoded.append(image) or encode(image, *a)
    )
    images = random_images()
    art = panel_art(images, 4, 16, range(1, 3), range(0, 4), "sixel")
    painted = decode_sixel(art.sixel)
    columns, lines = art.cells
    assert len(encoded) == 1 and np.array_equal(np.asarray(encoded[0]), np.asarray(art.image))
    assert painted.shape == (lines * cell.height, columns * cell.width)
    assert np.array_equal(centres(painted, columns, lines), percent(art.pixels))
    assert np.array_equal(art.pixels, page_mosaic(images, 4, 16, range(1, 3), range(0, 4)))
    assert all("".join(s.text for s in line) == " " * columns for line in art.lines)  # the image covers them


def test_cells_image_blows_up_each_pixel_to_half_a_cell() -> None:
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20  # an odd height: the last lower half is black
    image = np.asarray(cells_image(pixels, (4, 2), CellSize(3, 8)))
    assert image.shape == (16, 12)
    assert np.array_equal(image[::4, ::3], np.vstack([pixels, np.zeros((1, 4), np.uint8)]))
    assert (image[:4, :3] == pixels[0, 0]).all() and (image[12:, :] == 0).all()


# -- printing a grid (sample --show) -----------------------------------------------------------


def _panels() -> list[tuple[str, np.ndarray]]:
    return [("w = 1", random_images(seed=1)), ("w = 3", random_images(seed=2))]


def _console(out: io.StringIO, width: int = 80) -> Console:
    return Console(file=out, width=width, force_terminal=True, color_system="truecolor", highlight=False)


def test_write_grid_prints_labels_titles_and_half_blocks() -> None:
    out = io.StringIO()
    console = _console(out)
    drawn = write_grid(_panels(), ["0", "1", "null"], 4, "halfblock", console)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    assert drawn == "halfblock"
    titles = [i for i, line in enumerate(text) if line.strip() in ("w = 1", "w = 3")]
    assert len(titles) == 2 and text[titles[0]].startswith(" " * 5)
    # 4 tiles of 16 pixels fit 80 columns (32 do not): 3 rows of 18 pixels and the padding, 2 a line.
    art = text[titles[0] + 1 : titles[1]]
    assert len(art) == (PAD + 3 * 18) // 2 and all(len(line) == 5 + PAD + 4 * 18 for line in art)
    assert [line[:5].strip() for line in art if line[:5].strip()] == ["0", "1", "null"]


def test_write_grid_in_kitty_mode_sends_each_panel_once(cell: CellSize, terminal_out: io.StringIO) -> None:
    out = io.StringIO()
    assert write_grid(_panels(), ["0", "1", "null"], 4, "kitty", _console(out)) == "kitty"
    sent = kitty_images(terminal_out.getvalue())
    assert len(sent) == 2
    expected = page_mosaic(_panels()[0][1], 4, 16, range(3), range(4))
    assert any(
        np.array_equal(centres(image, expected.shape[1], expected.shape[0] // 2), expected)
        for image in sent.values()
    )
    assert out.getvalue().count(chr(0x10EEEE)) == 2 * expected.shape[1] * expected.shape[0] // 2


def test_write_grid_in_sixel_mode_draws_over_the_blank_cells(cell: CellSize) -> None:
    out = io.StringIO()
    assert write_grid(_panels(), ["0", "1", "null"], 4, "sixel", _console(out)) == "sixel"
    printed = out.getvalue()
    images = re.findall(r"\x1bP.*?\x1b\\", printed, flags=re.S)
    assert len(images) == 2
    expected = page_mosaic(_panels()[1][1], 4, 16, range(3), range(4))
    columns, lines = expected.shape[1], expected.shape[0] // 2
    assert np.array_equal(centres(decode_sixel(images[1]), columns, lines), percent(expected))
    # Drawn from the start of the art (column 6, after "null "), the cursor taken back afterwards.
    before_second = printed[printed.index(images[0]) + len(images[0]) : printed.index(images[1])]
    assert "\x1b[6G" in before_second and printed.endswith("\r")


# -- detection ----------------------------------------------------------------------------------


@pytest.fixture
def fresh_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing detected yet, no CFG_TUI_GRAPHICS."""
    monkeypatch.setattr(graphics, "_detected", None)
    monkeypatch.delenv(graphics.ENV_VAR, raising=False)


def _fake_terminal(monkeypatch: pytest.MonkeyPatch, sixel: bool, kitty: bool) -> list[str]:
    """A terminal that answers textual-image's questions; returns the questions asked."""
    renderables = graphics._renderables()
    asked: list[str] = []
    monkeypatch.setattr(graphics, "_has_terminal", lambda: True)
    monkeypatch.setattr(renderables.sixel, "query_terminal_support", lambda: asked.append("sixel") or sixel)
    monkeypatch.setattr(renderables.tgp, "query_terminal_support", lambda: asked.append("kitty") or kitty)
    monkeypatch.setattr(graphics, "cell_size", lambda query=False: CELL)
    return asked


@pytest.mark.usefixtures("fresh_detection")
def test_detection_follows_textual_image_sixel_first(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _fake_terminal(monkeypatch, sixel=True, kitty=True)
    assert detect_mode() == "sixel" and asked == ["sixel"]
    assert detect_mode() == "sixel" and asked == ["sixel"]  # asked once a process
    monkeypatch.setattr(graphics, "_detected", None)
    asked = _fake_terminal(monkeypatch, sixel=False, kitty=True)
    assert detect_mode() == "kitty" and asked == ["sixel", "kitty"]
    monkeypatch.setattr(graphics, "_detected", None)
    _fake_terminal(monkeypatch, sixel=False, kitty=False)
    assert detect_mode() == "halfblock"


@pytest.mark.usefixtures("fresh_detection")
def test_the_environment_overrides_auto_and_an_explicit_mode_overrides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _fake_terminal(monkeypatch, sixel=True, kitty=True)
    monkeypatch.setenv(graphics.ENV_VAR, "halfblock")
    assert detect_mode() == "halfblock" and detect_mode("auto") == "halfblock"
    monkeypatch.setenv(graphics.ENV_VAR, "Kitty")
    assert (
        detect_mode() == "kitty"
        and detect_mode("sixel") == "sixel"
        and detect_mode("halfblock") == "halfblock"
    )
    assert asked == []  # nothing needed asking
    monkeypatch.setenv(graphics.ENV_VAR, "retina")  # not a mode: as if unset
    assert detect_mode() == "sixel" and asked == ["sixel"]
    with pytest.raises(ValueError, match="auto, kitty, sixel, halfblock"):
        detect_mode("retina")


@pytest.mark.usefixtures("fresh_detection")
def test_inside_the_app_nothing_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _fake_terminal(monkeypatch, sixel=True, kitty=False)
    assert detect_mode(query=False) == "halfblock" and asked == []
    assert detect_mode() == "sixel"  # before the app starts
    assert detect_mode(query=False) == "sixel" and asked == ["sixel"]  # what was detected, not asked again


@pytest.mark.usefixtures("fresh_detection")
def test_without_a_terminal_detection_is_half_blocks_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    renderables = graphics._renderables()

    def never() -> bool:
        raise AssertionError("asked a terminal that is not there")

    monkeypatch.setattr(renderables.sixel, "query_terminal_support", never)
    monkeypatch.setattr(renderables.tgp, "query_terminal_support", never)
    monkeypatch.setattr(sys, "__stdout__", io.StringIO())
    monkeypatch.setattr(sys, "__stdin__", io.StringIO())
    start = time.monotonic()
    assert detect_mode() == "halfblock"
    assert time.monotonic() - start < 0.5


@pytest.mark.usefixtures("fresh_detection")
def test_a_terminal_that_cannot_be_asked_is_half_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import termios

    renderables = graphics._renderables()
    monkeypatch.setattr(graphics, "_has_terminal", lambda: True)

    def broken() -> bool:
        raise termios.error(25, "Inappropriate ioctl for device")

    monkeypatch.setattr(renderables.sixel, "query_terminal_support", broken)
    assert detect_mode() == "halfblock"


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal is POSIX")
def test_on_a_silent_terminal_import_asks_nothing_and_detection_gives_up_quickly() -> None:
    """In a real (pseudo-)terminal that never answers: importing textual-image through tui.graphics
    writes no question; detection asks (sixel's DA1, kitty's query), times out and draws half-blocks."""
    import pty

    script = (
        "import sys, time; import tui.graphics as g; g._renderables(); sys.stdout.write('IMPORTED\\n');"
        " sys.stdout.flush(); t = time.monotonic(); mode = g.detect_mode();"
        " sys.stdout.write(f'MODE {mode} {time.monotonic() - t:.2f}\\n')"
    )
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop(graphics.ENV_VAR, None)
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
        cwd=Path(__file__).parents[1],
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60  # a hang fails the test rather than stopping the run
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1)[0]:
                if child.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
        os.close(master)
        assert child.stderr is not None
        errors = child.stderr.read().decode()
        child.stderr.close()
    text = out.decode(errors="replace")
    assert child.returncode == 0, errors or text
    before, after = text.split("IMPORTED", 1)
    assert "\x1b[c" not in before and "\x1b_G" not in before  # the import asked nothing
    assert "\x1b[c" in after and "\x1b_G" in after  # detection asked both
    mode, seconds = re.search(r"MODE (\w+) ([\d.]+)", after).groups()
    assert mode == "halfblock" and float(seconds) < 2
