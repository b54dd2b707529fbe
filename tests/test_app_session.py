"""A sampling session as a user has it: a quick first paint, progress that says how long, esc that
cancels, keys and clicks that do what the help says, and a form remembered between sessions."""

import os
import re
import time
from pathlib import Path

import pytest
from textual.widgets import Input, ProgressBar, Select, Static

import tui.app as app_module
from tests.conftest import generate
from tests.layout import assert_no_overlaps, focus_problems
from tui.app import CfgTuiApp
from tui.screens.sample import SampleScreen, progress_text
from tui.screens.start import StartScreen
from tui.settings import SETTINGS_LIMIT, AppSettings, Remembered
from tui.widgets.digit_picker import DigitPicker
from tui.widgets.image_grid import ImageGrid


def _app(checkpoint: Path) -> CfgTuiApp:
    return CfgTuiApp(AppSettings(runs_folder=Path("runs"), checkpoint=checkpoint))


def _status(app: CfgTuiApp) -> str:
    return str(app.screen.query_one("#sample-status", Static).render())


def _generating(app: CfgTuiApp) -> bool:
    return any(w.group == "generate" and w.is_running for w in app.workers)


def test_progress_says_done_total_percent_and_eta() -> None:
    assert progress_text(6, 24, elapsed=3.0) == "6/24 steps · 25 % · ETA 9s · esc cancels"
    assert progress_text(0, 24, elapsed=0.0) == "0/24 steps · 0 % · esc cancels"  # no ETA before a step
    assert "ETA" not in progress_text(24, 24, elapsed=12.0)


@pytest.mark.asyncio
async def test_the_first_paint_does_not_wait_for_the_screens(
    small_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the screens import (torch: seconds on a fresh start) the start screen is up and says so;
    then the Sample screen replaces it."""
    release = __import__("threading").Event()
    real = app_module.screen_classes

    def slow_import() -> dict:
        release.wait(30)
        return real()

    monkeypatch.setattr(app_module, "screen_classes", slow_import)
    monkeypatch.setattr(app_module, "slow_imports_pending", lambda: True)
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert "loading torch" in str(app.screen.query_one("#start-status", Static).render())
        release.set()
        for _ in range(600):  # generous: a loaded machine
            await pilot.pause(0.05)
            if isinstance(app.screen, SampleScreen):
                break
        assert isinstance(app.screen, SampleScreen)
        for _ in range(100):  # mounted through: the form's Selects have their values
            await pilot.pause(0.05)
            if app.screen.query(Select) and app.screen.query_one("#preset", Select).value == "fast":
                break
        assert app.screen.query_one("#preset", Select).value == "fast"


@pytest.mark.asyncio
async def test_esc_cancels_a_generation_within_a_second(small_checkpoint: Path) -> None:
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        slow = {"solver": "euler", "steps": "1000", "time-grid": "uniform", "guidance": "1,3"}  # the most
        for id_, value in slow.items():
            app.screen.query_one(f"#{id_}", Input | Select).value = value
        await pilot.press("ctrl+g")
        bar = app.screen.query_one(ProgressBar)
        for _ in range(400):
            await pilot.pause(0.05)
            if (bar.progress or 0) > 0:
                break
        assert 0 < (bar.progress or 0) < 2000 and _generating(app)
        assert "/2000 steps ·" in _status(app) and "% · ETA" in _status(app)
        start = time.perf_counter()
        await pilot.press("escape")
        while _generating(app) and time.perf_counter() - start < 5:
            await pilot.pause(0.01)
        assert time.perf_counter() - start < 1.0
        await pilot.pause()
        assert "cancelled" in _status(app)
        assert app.screen.result is None and bar.progress == 0


@pytest.mark.asyncio
async def test_digit_keys_act_on_the_picker_except_inside_a_text_field(small_checkpoint: Path) -> None:
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        picker = app.screen.query_one(DigitPicker)
        app.screen.query_one("#preset", Select).focus()
        await pilot.press("3")
        assert 3 not in picker.digits  # a Select does not take digits: the picker does
        seed = app.screen.query_one("#seed", Input)
        seed.focus()
        await pilot.press("end", "3")
        assert seed.value == "03" and 3 not in picker.digits  # typed, not toggled
        await pilot.press("escape", "3")  # esc leaves the field
        assert 3 in picker.digits and picker.has_focus


@pytest.mark.asyncio
async def test_a_click_on_the_picker_toggles_that_label(small_checkpoint: Path) -> None:
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        picker = app.screen.query_one(DigitPicker)
        await pilot.click(DigitPicker, offset=(2, 0))  # "0 1 2 …": column 2 is the 1
        assert 1 not in picker.digits and 0 in picker.digits
        await pilot.click(DigitPicker, offset=(21, 0))  # "… 9 null": null starts at column 20
        assert picker.null
        await pilot.click(DigitPicker, offset=(1, 0))  # the space between 0 and 1: nothing
        assert picker.labels() == [0, 2, 3, 4, 5, 6, 7, 8, 9, 10]


@pytest.mark.asyncio
async def test_f9_gives_the_grid_the_whole_width(small_checkpoint: Path) -> None:
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        grid = app.screen.query_one("#grid")
        narrow = grid.size.width
        await pilot.press("f9")
        await pilot.pause()
        assert not app.screen.query_one("#sample-form").display and grid.size.width >= narrow + 25
        await pilot.press("f9")
        await pilot.pause()
        assert grid.size.width == narrow


@pytest.mark.asyncio
async def test_the_form_survives_a_restart_and_f5_resets_it(
    small_checkpoint: Path, private_config: Path
) -> None:
    chosen = {"guidance": "2,4", "per-class": "3", "seed": "7", "preset": "lab", "method": "interval"}
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        for id_, value in chosen.items():
            app.screen.query_one(f"#{id_}", Input | Select).value = value
            await pilot.pause()
        await pilot.press("3", "n")
        await pilot.press("ctrl+q")
        assert any("quitting" in n.message for n in app._notifications)
    assert private_config.exists()

    again = _app(small_checkpoint)
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for id_, value in chosen.items():
            assert again.screen.query_one(f"#{id_}", Input | Select).value == value, id_
        assert again.screen.query_one("#solver", Select).value == "euler"  # the lab preset's
        picker = again.screen.query_one(DigitPicker)
        assert 3 not in picker.digits and picker.null
        await pilot.press("f5")
        await pilot.pause()
        assert again.screen.query_one("#guidance", Input).value == "1,3,5"
        assert again.screen.query_one("#preset", Select).value == "fast"
        assert picker.labels() == list(range(10))
    assert Remembered.read(private_config).fields["guidance"] == "1,3,5"


@pytest.mark.asyncio
async def test_a_damaged_settings_file_is_one_warning_and_the_defaults(
    small_checkpoint: Path, private_config: Path
) -> None:
    private_config.write_text("[sample\nguidance = ")
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#guidance", Input).value == "1,3,5"
        assert any("unreadable" in n.message for n in app._notifications)


def test_remembered_settings_drop_what_they_do_not_know(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[sample]\ndigits = [1, "x"]\nnull = "yes"\n[sample.fields]\nseed = "5"\nsteps = 3\n')
    remembered = Remembered.read(path)
    assert remembered.fields == {"seed": "5"} and remembered.digits is None and remembered.null is None
    Remembered({"guidance": 'say "1,3"'}, [2, 4], True).write(tmp_path / "new" / "s.toml")
    back = Remembered.read(tmp_path / "new" / "s.toml")
    assert back == Remembered({"guidance": 'say "1,3"'}, [2, 4], True)


def test_remembered_settings_read_only_a_regular_file_of_sane_size(tmp_path: Path) -> None:
    """A FIFO there would block the read (and the app) forever; a huge file is not ours."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "huge.toml").write_bytes(b"#" * (SETTINGS_LIMIT + 1))
    for name, words in (("fifo", "not a regular file (a FIFO)"), ("huge.toml", "too large"),
                        (".", "not a regular file (a folder)")):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(words)):
            Remembered.read(tmp_path / name)
    assert Remembered.read(tmp_path / "missing.toml") == Remembered()


@pytest.mark.asyncio
async def test_right_walks_through_every_column_of_every_panel(small_checkpoint: Path) -> None:
    """At 80x24, full screen and zoomed to 32-pixel tiles, 4 columns × 3 panels do not fit: → pages
    columns, then the next panel, until every (panel, column) has been on screen."""
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        grid = await generate(pilot, app, solver="euler", steps="2", guidance="1,3,5")
        await pilot.press("f9", "plus", "plus", "plus")  # the form hidden: room for one 32-px tile
        await pilot.pause()
        assert grid.tile == 32 and len(grid.visible_cols()) < 4
        seen = set()
        for _ in range(12):
            seen |= {(p, c) for p in grid.visible_panels() for c in grid.visible_cols()}
            await pilot.press("right")
        assert seen == {(p, c) for p in range(3) for c in range(4)}
        await pilot.press("minus")
        assert grid.tile == 16 and "zoom" in grid.status


@pytest.mark.asyncio
async def test_the_graphics_mode_comes_from_the_settings_and_the_palette_cycles_it(
    small_checkpoint: Path,
) -> None:
    settings = AppSettings(runs_folder=Path("runs"), checkpoint=small_checkpoint, graphics="kitty")
    app = CfgTuiApp(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        grid = app.screen.query_one(ImageGrid)
        assert grid.graphics == "kitty" and grid.draw_mode == "kitty"
        app.screen.action_graphics()
        await pilot.pause()
        assert grid.graphics == "sixel" and any("sixel" in n.message for n in app._notifications)
        app.screen.action_graphics()
        assert grid.graphics == "halfblock" and grid.draw_mode == "halfblock"


def test_a_bad_graphics_mode_is_one_line(capsys: pytest.CaptureFixture) -> None:
    from tui.cli import run

    with pytest.raises(SystemExit) as exit_:
        run(["--graphics", "vt100"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and "kitty" in err


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "size", [(60, 20), (80, 24), (200, 60), (250, 70)], ids=["60x20", "80x24", "200x60", "250x70"]
)
async def test_the_screen_holds_together_before_and_after_the_default_generate(
    small_checkpoint: Path, size: tuple[int, int]
) -> None:
    """Nothing overlaps or is cut, before and after generating the default request (10 digits × 4 ×
    w = 1, 3, 5); from 200x60 that request is shown whole; focus shows on every widget."""
    app = _app(small_checkpoint)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert_no_overlaps(app.screen)
        if size == (60, 20):
            assert await focus_problems(pilot, app.screen) == []
        await pilot.press("escape")
        grid = await generate(pilot, app)
        await pilot.pause()
        assert_no_overlaps(app.screen)
        shown = len(grid.visible_rows()) * len(grid.visible_cols()) * len(grid.visible_panels())
        assert shown == 10 * 4 * 3 if size[0] >= 200 else 0 < shown < 10 * 4 * 3


@pytest.mark.asyncio
async def test_a_remembered_choice_the_form_no_longer_offers_is_skipped(
    small_checkpoint: Path, private_config: Path
) -> None:
    Remembered({"solver": "rk4", "seed": "9"}, None, None).write(private_config)
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#seed", Input).value == "9"
        assert app.screen.query_one("#solver", Select).value == "midpoint"  # the fast preset's, kept


@pytest.mark.asyncio
async def test_a_failed_start_says_why_and_the_app_stays_up(
    small_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict:
        raise ImportError("libtorch_cpu.so: cannot open shared object file")

    monkeypatch.setattr(app_module, "screen_classes", broken)
    monkeypatch.setattr(app_module, "slow_imports_pending", lambda: True)
    app = _app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(app.screen.query_one("#start-status", Static).render())
        assert isinstance(app.screen, StartScreen) and "cannot start: ImportError: libtorch_cpu.so" in status
        await pilot.press("ctrl+s")  # the screens' keys do nothing until they exist
        assert isinstance(app.screen, StartScreen)
