"""The Sample screen's export dialog fits the smallest terminal the app is laid out for."""

from pathlib import Path

import pytest

from tests.layout import assert_no_overlaps, focus_problems
from tui.app import CfgTuiApp
from tui.screens.export import ExportScreen
from tui.settings import AppSettings


@pytest.mark.asyncio
async def test_the_dialog_fits_60x20_and_shows_focus(tmp_path: Path) -> None:
    app = CfgTuiApp(AppSettings(runs_folder=tmp_path / "runs"))
    async with app.run_test(size=(60, 20)) as pilot:
        app.push_screen(ExportScreen(tmp_path / "exports" / "samples-20260101-120000.png"))
        await pilot.pause()
        dialog = app.screen.query_one("#export")
        assert dialog.region.width <= 60 - 4 and dialog.region.height <= 20  # room around it
        assert_no_overlaps(app.screen)
        assert await focus_problems(pilot, app.screen) == []
