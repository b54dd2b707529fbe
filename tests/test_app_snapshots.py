"""Screenshots of the app at 60x20 (the smallest it is laid out for), 80x24 and 200x60, compared
with the stored ones (pytest-textual-snapshot).

Regenerate after an intended change with ``pytest tests/test_app_snapshots.py --snapshot-update``
and look at the new SVGs before committing them.
"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

import tui.screens.sample as sample_screen
import tui.widgets.machine_panel as machine_panel
from core.images import grid_figure, save_png, tiles_text
from core.machine import GpuReading, HostReading, MachineProbe, MachineReading
from core.runs import RunDir, RunStatus
from tests.conftest import generate, run_config
from tui.app import CfgTuiApp
from tui.screens.export import ExportScreen
from tui.settings import AppSettings

SIZES = [(60, 20), (80, 24), (200, 60)]
IDS = ["60x20", "80x24", "200x60"]
sizes = pytest.mark.parametrize("size", SIZES, ids=IDS)


GIB = 2**30


class FixedMachine(MachineProbe):
    """One made-up H200 and host: the machine panel's figures fixed for the screenshots."""

    def read(self, pid: int | None) -> MachineReading:
        gpu = GpuReading(0, "NVIDIA H200", 87, int(41.2 * GIB), int(139.8 * GIB), 71, 312, 700)
        return MachineReading([gpu], None, HostReading(35.0, 16, 4.1, 12 * GIB, int(125.8 * GIB)), None)


@pytest.fixture
def app(small_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> CfgTuiApp:
    """The app on a tiny model and an empty runs folder, at relative paths."""
    monkeypatch.setattr(sample_screen, "format_duration", lambda seconds: "1s")  # the status's "in 1s"
    monkeypatch.setattr(machine_panel, "MachineProbe", FixedMachine)
    return CfgTuiApp(AppSettings(runs_folder=Path("runs"), checkpoint=small_checkpoint))


@sizes
def test_sample_screen_before_generating(app: CfgTuiApp, size: tuple[int, int], snap_compare) -> None:
    assert snap_compare(app, terminal_size=size)


@sizes
def test_sample_screen_with_samples(app: CfgTuiApp, size: tuple[int, int], snap_compare) -> None:
    async def null_too(pilot) -> None:
        await pilot.press("n")
        await generate(pilot, pilot.app, steps="4")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=null_too)


@sizes
def test_sample_screen_on_the_lab_preset_with_interval(
    app: CfgTuiApp, size: tuple[int, int], snap_compare
) -> None:
    """ctrl+l fills the lab's sampler; the params field shows the chosen method's defaults."""

    async def choose(pilot) -> None:
        await pilot.press("ctrl+l")
        await pilot.pause()
        pilot.app.screen.query_one("#method").value = "interval"
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=choose)


async def open_evaluate(pilot) -> None:
    """The Evaluate screen, its classifier at a relative path (the default is this checkout's)."""
    await pilot.press("ctrl+n")
    await pilot.pause()
    pilot.app.screen.query_one("#eval-classifier").value = "classifier.safetensors"
    await pilot.pause()


@sizes
def test_evaluate_screen_form(app: CfgTuiApp, size: tuple[int, int], snap_compare) -> None:
    async def fill(pilot) -> None:
        await open_evaluate(pilot)
        pilot.app.screen.query_one("#eval-methods").value = "cfg interval apg:eta=0"
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=fill)


@sizes
def test_help_screen(app: CfgTuiApp, size: tuple[int, int], snap_compare) -> None:
    """Over the Evaluate screen, so that the Sample screen's changes show only in its own snapshots."""

    async def open_help(pilot) -> None:
        await open_evaluate(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=open_help)


@sizes
def test_export_dialog(app: CfgTuiApp, size: tuple[int, int], snap_compare) -> None:
    """The dialog the Sample screen opens, here over the Evaluate screen (as the help is)."""

    async def open_export(pilot) -> None:
        await open_evaluate(pilot)
        pilot.app.push_screen(ExportScreen(Path("exports/samples-20260101-120000.png")))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=open_export)


def _finished_run(folder: Path) -> None:
    """A made-up finished run with a falling loss and five quality evaluations, so that its charts
    and numbers are fixed."""
    run = RunDir.create(folder / "demo-run", run_config(steps=500, batch_size=128))
    for step in range(10, 510, 10):
        loss = 0.2 + 1.2 * math.exp(-step / 80) + 0.03 * math.sin(step)
        run.append_metrics(
            {
                "step": step,
                "loss": loss,
                "lr": 1e-3,
                "images_per_sec": 450.0,
                "elapsed": step * 0.3,
                "memory_mb": 812.0,
            }
        )
        if step % 100 == 0:
            fd, accuracy = 3000 / (step / 100) ** 1.5, step / 510
            quality = {"frechet": fd, "frechet_spread": 2.0, "accuracy": accuracy, "samples": 300}
            run.append_metrics({"step": step, "elapsed": step * 0.3 + 1, "quality": quality})
    status = {
        "state": "finished",
        "pid": 1,
        "host": "elsewhere",
        "step": 500,
        "total_steps": 500,
        "started": 0.0,
        "updated": 150.0,
        "checkpoint_step": 500,
        "device": "cpu",
        "last_loss": 0.2,
        "elapsed": 150.0,
    }
    run.write_status(RunStatus.from_dict(status))
    _preview(run, 500)


def _preview(run: RunDir, step: int) -> None:
    """A preview as a trainer writes it, of digits drawn in Pillow's font (the same on every machine)."""
    font = ImageFont.load_default(size=22)
    tiles = []
    for digit in range(10):
        for sample in range(4):
            tile = Image.new("L", (28, 28))
            ImageDraw.Draw(tile).text((14 + sample - 2, 14), str(digit), fill=255, font=font, anchor="mm")
            tiles.append(np.asarray(tile))
    images = torch.from_numpy(np.stack(tiles)[:, None] / 127.5 - 1)
    digits = [str(d) for d in range(10)]
    figure = grid_figure([("w = 3.0", images)], digits)
    save_png(figure, run.previews / f"step-{step:06d}.png", {"tiles": tiles_text(digits, 4)})


@sizes
def test_train_screen_following_a_finished_run(app: CfgTuiApp, size: tuple[int, int], snap_compare) -> None:
    _finished_run(Path("runs"))

    async def follow(pilot) -> None:
        await pilot.press("ctrl+t")
        await pilot.pause()
        pilot.app.screen.query_one("#run-list").focus()
        await pilot.press("enter")
        await pilot.pause(0.5)

    assert snap_compare(app, terminal_size=size, run_before=follow)
