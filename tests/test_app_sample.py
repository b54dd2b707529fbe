"""The Sample screen, driven by keys through Textual's pilot."""

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tui.screens.sample as sample_screen
from core.checkpoint import save_checkpoint
from core.grids import grid_key, grid_store_path, save_grid
from core.images import PAD, mosaic
from core.sampling import FIT_GUIDANCE, SAMPLERS
from core.trainer import new_model
from tests.conftest import SMALL, TINY, fill, generate, generated
from tui.app import CfgTuiApp
from tui.screens.export import ExportScreen
from tui.screens.sample import SampleScreen
from tui.settings import AppSettings
from tui.widgets.digit_picker import DigitPicker
from tui.widgets.image_grid import ImageGrid


def _app(checkpoint: Path, tmp_path: Path) -> CfgTuiApp:
    return CfgTuiApp(AppSettings(runs_folder=Path("runs"), checkpoint=checkpoint))


@pytest.mark.asyncio
async def test_digit_keys_toggle_rows(small_checkpoint: Path, tmp_path: Path) -> None:
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        picker = app.screen.query_one(DigitPicker)
        assert picker.labels() == list(range(10))
        await pilot.press("3", "7", "n")
        assert picker.labels() == [0, 1, 2, 4, 5, 6, 8, 9, 10]
        await pilot.press("3")
        assert 3 in picker.labels()


@pytest.mark.asyncio
async def test_generate_shows_the_samples_as_half_blocks(small_checkpoint: Path, tmp_path: Path) -> None:
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in "0123456789":  # keep only 2 and null
            if key != "2":
                await pilot.press(key)
        await pilot.press("n")
        grid = await generate(pilot, app, steps="3", guidance="0,4", **{"per-class": "1"})
        screen = app.screen
        assert isinstance(screen, SampleScreen) and screen.result is not None
        assert len(grid.panels) == 2 and grid.row_labels == ["2", "null"]
        # The rendered cells are the samples' pixels: ▀ with fg = upper pixel, bg = lower pixel.
        pixels = screen.result.pixels[0]  # (2, 32, 32)
        tile = grid.tile_images().shape[-1]
        expected = mosaic(grid.tile_images()[: grid.rows_that_fit(tile)], 1)
        label_width = len("null") + 1
        checked = 0
        for y in range(1, expected.shape[0] // 2 + 1):
            strip = grid.render_line(y)
            x = 0
            for segment in strip:
                for _ in segment.text:
                    col = x - label_width
                    if segment.text == "▀" and 0 <= col < expected.shape[1]:
                        upper, lower = expected[2 * (y - 1), col], expected[2 * (y - 1) + 1, col]
                        assert segment.style.color.triplet == (upper,) * 3
                        assert segment.style.bgcolor.triplet == (lower,) * 3
                        checked += 1
                    x += 1
        assert checked > 100
        assert tile == grid.tile and pixels.shape == (2, 32, 32)
        # The whole request fits at 80x24 (2 rows, 1 column, 2 panels side by side): nothing to page.
        assert grid.visible_panels() == [0, 1] and len(grid.visible_rows()) == 2


@pytest.mark.asyncio
async def test_trajectory_plays_from_noise(small_checkpoint: Path, tmp_path: Path) -> None:
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        grid = await generate(pilot, app, steps="10", guidance="3", **{"per-class": "1"})
        frames = grid.panels[0].frames
        assert frames is not None and len(frames) == 11  # every step of 10, and the start
        assert np.array_equal(frames[-1], grid.panels[0].images)
        await pilot.press("p")
        assert grid.frame is not None and grid.frame <= 2  # playing, from the start
        seen = {grid.frame}
        for _ in range(400):  # 11 frames at 8 per second; generous for a loaded machine
            await pilot.pause(0.02)
            seen.add(grid.frame)
            if grid.frame is None:
                break
        assert {1, 2} <= seen and grid.frame is None  # played through, then back to the result


@pytest.mark.asyncio
async def test_export_writes_png_and_npz(small_checkpoint: Path, tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        await _export_under_umask_022(small_checkpoint, tmp_path)
    finally:
        os.umask(old_umask)


async def _export_under_umask_022(small_checkpoint: Path, tmp_path: Path) -> None:
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await generate(pilot, app, steps="2", guidance="1,3", **{"per-class": "2"})
        await pilot.press("ctrl+e")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one("#export-path").value = str(tmp_path / "out" / "grid.png")
        (tmp_path / "out").mkdir()
        await pilot.press("enter")
        await pilot.pause()
        png = Image.open(tmp_path / "out" / "grid.png")
        assert png.width > 0
        # The PNG records how it was made: the equivalent command line, with the fields' sampler.
        assert png.text["Software"].startswith("cfg-tui ")
        recipe = {"checkpoint": "small.safetensors", "solver": "midpoint", "steps": "2", "seed": "0",
                  "guidance method": "cfg", "guidance scales": "1,3", "digits": "0,1,2,3,4,5,6,7,8,9",
                  "per class": "2", "time grid": "uniform"}  # fmt: skip
        assert {key: png.text.get(key) for key in recipe} == recipe
        assert png.text["cfg-tui version"] == png.text["Software"].split()[1]
        assert png.text["Comment"].startswith("cfg-tui sample --checkpoint small.safetensors --digits 0,1,2,")
        assert (
            "--guidance 1,3 --per-class 2 --seed 0 --solver midpoint --steps 2 --grid uniform"
            in png.text["Comment"]
        )
        # Exports are the user's files: 0666 less the umask (022 here), not mkstemp's 0600.
        modes = {(tmp_path / "out" / name).stat().st_mode & 0o777 for name in ("grid.png", "grid.npz")}
        assert modes == {0o644}
        saved = np.load(tmp_path / "out" / "grid.npz")
        assert saved["images"].shape == (2 * 10 * 2, 1, 32, 32) and saved["guidance"].tolist()[-1] == 3.0
        assert any("wrote" in n.message and "grid.png" in n.message for n in app._notifications)


@pytest.mark.asyncio
async def test_bad_fields_notify_and_do_not_crash(small_checkpoint: Path, tmp_path: Path) -> None:
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        for fields, message in [
            ({"steps": "abc"}, "steps: 'abc' is not a whole number"),
            ({"steps": "0"}, "steps must be at least 1"),
            ({"steps": "5", "guidance": "nan"}, "guidance: nan is not a finite number"),
            ({"guidance": "1", "checkpoint": "nowhere.safetensors"}, "does not exist"),
        ]:
            await fill(app, **fields)
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert any(message in n.message for n in app._notifications), message
        (tmp_path / "junk.safetensors").write_bytes(b"junk")
        await fill(app, checkpoint="junk.safetensors")
        await pilot.press("ctrl+g")
        for _ in range(100):
            await pilot.pause(0.05)
            if any("not a readable safetensors file" in n.message for n in app._notifications):
                break
        else:
            raise AssertionError("no notification for a corrupt checkpoint")
        await pilot.press("ctrl+e")  # nothing to export: a warning, not a crash
        await pilot.pause()
        assert app.screen.query_one(ImageGrid).panels == []
        assert isinstance(app.screen, SampleScreen)


def test_mosaic_layout() -> None:
    tiles = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
    out = mosaic(tiles, cols=2)
    assert out.shape == (PAD + 2 * (2 + PAD), PAD + 2 * (2 + PAD))
    assert np.array_equal(out[PAD + 4 : PAD + 6, PAD + 4 : PAD + 6], tiles[3])
    assert asyncio.iscoroutinefunction(test_digit_keys_toggle_rows)


@pytest.mark.asyncio
async def test_a_model_of_two_classes_samples_with_its_own_picker(tmp_path: Path) -> None:
    """TINY has 2 classes (and 16-pixel images): the picker offers 0, 1 and null, and generating works."""
    save_checkpoint(tmp_path / "two.safetensors", new_model(TINY, seed=0).eval())
    app = CfgTuiApp(AppSettings(runs_folder=tmp_path / "runs", checkpoint=tmp_path / "two.safetensors"))
    async with app.run_test(size=(80, 24)) as pilot:
        picker = app.screen.query_one(DigitPicker)
        assert picker.num_classes == 2 and picker.labels() == [0, 1]
        assert picker.render().plain.split() == ["0", "1", "null"]
        await pilot.press("5", "n")  # a digit the model does not know is ignored; null is its label 2
        assert picker.labels() == [0, 1, 2]
        grid = await generate(pilot, app, steps="2", guidance="3", **{"per-class": "2"})
        screen = app.screen
        assert isinstance(screen, SampleScreen) and screen.result is not None
        assert screen.result.labels == (0, 1, 2) and grid.row_labels == ["0", "1", "null"]
        assert screen.result.pixels[0].shape == (6, 16, 16)
        assert not [n for n in app._notifications if n.severity == "error"]

        await fill(app, checkpoint=str(tmp_path / "missing.safetensors"))  # not a checkpoint: no change
        await pilot.pause()
        assert picker.num_classes == 2
        save_checkpoint(tmp_path / "small-ten.safetensors", new_model(SMALL, seed=0).eval())
        await fill(app, checkpoint=str(tmp_path / "small-ten.safetensors"))  # the picker follows the field
        await pilot.pause()
        assert picker.num_classes == 10 and picker.labels() == [*range(10), 10]


@pytest.mark.asyncio
async def test_an_error_inside_a_worker_is_one_notification_and_the_app_stays_up(
    small_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the sampler broke\nsecond line")

    working = sample_screen.sample_images
    monkeypatch.setattr(sample_screen, "sample_images", broken)
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fill(app, steps="2", **{"time-grid": "uniform"})
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await pilot.pause()
        errors = [n for n in app._notifications if n.severity == "error"]
        expected = [("Generate failed", "RuntimeError: the sampler broke")]
        assert [(n.title, n.message) for n in errors] == expected
        assert app.is_running and isinstance(app.screen, SampleScreen)
        assert str(app.screen.query_one("#sample-status").content) == ""  # "generating…" is gone

        monkeypatch.setattr(sample_screen, "sample_images", working)  # the app still works
        grid = await generate(pilot, app, steps="2")
        assert grid.panels


SAMPLER_FIELDS = ("preset", "solver", "steps", "time-grid", "method", "params")


def _sampler_fields(app: CfgTuiApp) -> dict[str, str]:
    return {name: str(app.screen.query_one(f"#{name}").value) for name in SAMPLER_FIELDS}


def _keep_digits(pilot, keep: str):
    """Key presses that leave only the digits in ``keep`` chosen."""
    return pilot.press(*(d for d in "0123456789" if d not in keep))


@pytest.mark.asyncio
async def test_the_screen_starts_on_the_fast_preset_and_ctrl_l_switches_to_the_lab_and_back(
    small_checkpoint: Path, tmp_path: Path
) -> None:
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        fast = {"preset": "fast", "solver": "midpoint", "steps": "6", "time-grid": "fitted", "method": "cfg"}
        assert _sampler_fields(app) == {**fast, "params": ""}
        assert SAMPLERS["fast"].solver == "midpoint" and SAMPLERS["fast"].steps == 6
        assert "ctrl+l" in {b.binding.key for b in app.active_bindings.values() if b.binding.show}
        assert "Sampler preset" in [c.title for c in app.screen.commands()]

        await pilot.press("ctrl+l")
        await pilot.pause()
        lab = {"preset": "lab", "solver": "euler", "steps": "99", "time-grid": "uniform", "method": "cfg"}
        assert _sampler_fields(app) == {**lab, "params": ""}

        await pilot.press("ctrl+l")
        await pilot.pause()
        assert _sampler_fields(app)["preset"] == "fast" and _sampler_fields(app)["steps"] == "6"

        await fill(app, steps="2", **{"time-grid": "uniform"})  # the fields, not the preset, decide
        await pilot.press("ctrl+g")
        await generated(pilot, app)
        screen = app.screen
        assert isinstance(screen, SampleScreen) and screen.result is not None
        assert screen.result.request.sampler.steps == 2 and screen.result.request.sampler.solver == "midpoint"


@pytest.mark.asyncio
async def test_interval_guidance_generates_and_the_status_counts_its_nfe(
    small_checkpoint: Path, tmp_path: Path
) -> None:
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _keep_digits(pilot, "3")
        await fill(app, method="interval")
        await pilot.pause()
        params = app.screen.query_one("#params")
        assert params.placeholder == "start=0.2,end=0.8"  # the method's defaults
        grid = await generate(
            pilot, app, params="start=0.1,end=0.9", guidance="1,3", steps="4", **{"per-class": "2"}
        )
        screen = app.screen
        assert isinstance(screen, SampleScreen) and screen.result is not None
        assert len(grid.panels) == 2 and screen.result.pixels[1].shape == (2, 32, 32)
        # Midpoint × 4 evaluates at t = 0, 1/8, …, 7/8: w = 1 is one row each (8); at w = 3 the
        # guided interval [0.1, 0.9] holds all but t = 0, which is one row (2 · 7 + 1 = 15).
        assert screen.result.nfe == [8.0, 15.0]
        status = str(screen.query_one("#sample-status").content)
        assert "midpoint × 4, uniform grid, interval:start=0.1,end=0.9" in status
        assert "NFE per image 8 (w=1), 15 (w=3)" in status
        assert not [n for n in app._notifications if n.severity == "error"]

        await fill(app, method="cfg")  # parameters the new method does not take are cleared
        await pilot.pause()
        assert params.value == "" and params.placeholder == "none"


@pytest.mark.asyncio
async def test_bad_guidance_parameters_notify_and_do_not_crash(
    small_checkpoint: Path, tmp_path: Path
) -> None:
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fill(app, method="interval")
        await pilot.pause()
        for fields, message in [
            ({"params": "start=2"}, "params: interval needs 0 <= start < end <= 1, not start=2 end=0.8"),
            (
                {"params": "begin=0.3"},
                "params: interval takes key=value parameters (start, end), not 'begin=0.3'",
            ),
            ({"params": "start=soon"}, "params: interval's start must be a number, not 'soon'"),
        ]:
            await fill(app, **fields)
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert any(n.message == message for n in app._notifications), message
        await fill(app, method="zero-star")
        await pilot.pause()
        await fill(app, params="", **{"time-grid": "fitted"})
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("fitted without zero-init" in n.message for n in app._notifications)
        await pilot.pause(0.2)
        assert app.is_running and isinstance(app.screen, SampleScreen)
        assert app.screen.query_one(ImageGrid).panels == [] and not app.workers  # nothing was started


@pytest.mark.asyncio
async def test_auto_guidance_needs_a_weaker_model_and_samples_with_one(
    small_checkpoint: Path, tmp_path: Path
) -> None:
    save_checkpoint(tmp_path / "guide.safetensors", new_model(SMALL, seed=1).eval())
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _keep_digits(pilot, "7")
        await fill(app, method="auto", guidance="3", **{"per-class": "1"})
        await pilot.pause()
        assert app.screen.query_one("#params").placeholder == "checkpoint=FILE"
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await pilot.pause()
        errors = [(n.title, n.message) for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and errors[0][0] == "Generate failed"
        assert errors[0][1].startswith("auto guidance needs a weaker model")

        await generate(pilot, app, params="checkpoint=guide.safetensors", steps="4")
        screen = app.screen
        assert isinstance(screen, SampleScreen) and screen.result is not None
        assert screen.result.nfe == [16.0]  # one row in each model at every evaluation: 2 · 8
        assert "auto:checkpoint=guide.safetensors" in str(screen.query_one("#sample-status").content)


@pytest.mark.asyncio
async def test_a_fitted_grid_is_read_from_beside_the_weights(
    small_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker resolves the grid with the weights' path: a stored grid is used, not fitted again."""

    def no_fitting(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitted although a grid was stored")

    monkeypatch.setattr("core.sampling.fitted_grid", no_fitting)
    # All but the last step below t = 0.2, outside the interval: one row each, unlike the uniform grid.
    key = grid_key("midpoint", 4, "interval", FIT_GUIDANCE)
    save_grid(grid_store_path(tmp_path / "small.safetensors"), key, [0.0, 0.02, 0.04, 0.06, 1.0])
    app = _app(small_checkpoint, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _keep_digits(pilot, "5")
        await fill(app, method="interval", **{"time-grid": "fitted"})
        await pilot.pause()
        await generate(pilot, app, guidance="3", steps="4", **{"per-class": "1", "time-grid": "fitted"})
        screen = app.screen
        assert isinstance(screen, SampleScreen) and screen.result is not None
        assert screen.result.nfe == [9.0]  # t = 0, .01, …, .06 one row each; t = .53 two
        assert "midpoint × 4, fitted grid, interval ·" in str(screen.query_one("#sample-status").content)
        assert not [n for n in app._notifications if n.severity == "error"]
