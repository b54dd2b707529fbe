"""The Evaluate screen runs eval in a worker, one row per w and guidance method, and shows the rows
and a bar chart."""

from pathlib import Path

import pytest
from textual.widgets import DataTable, Label, Static

from core.checkpoint import save_checkpoint
from core.data import load_split
from core.metrics import save_classifier, train_classifier
from core.trainer import new_model
from tests.conftest import SMALL
from tests.layout import assert_no_overlaps, focus_problems
from tui.app import CfgTuiApp
from tui.defaults import PER_CLASS_LABEL
from tui.settings import AppSettings


@pytest.mark.asyncio
async def test_eval_in_the_app(tmp_path: Path, data_root: Path) -> None:
    model = save_checkpoint(tmp_path / "small.safetensors", new_model(SMALL, seed=0))
    train, _ = load_split("mnist", "train", data_root, log=lambda s: None)
    classifier = save_classifier(tmp_path / "clf.safetensors", train_classifier(train, epochs=1), {})
    app = CfgTuiApp(AppSettings(runs_folder=tmp_path / "runs", checkpoint=model, data_root=data_root))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        screen = app.screen
        for name, value in {
            "guidance": "0,3",
            "methods": "cfg interval",
            "steps": "2",
            "per-class": "3",
            "classifier": str(classifier),
        }.items():
            screen.query_one(f"#eval-{name}").value = value
        await pilot.press("ctrl+g")
        table = screen.query_one(DataTable)
        for _ in range(800):
            await pilot.pause(0.05)
            if table.row_count == 4 and "rows" in str(screen.query_one("#eval-status", Static).content):
                break
        assert table.row_count == 4
        names = [row["name"] for row in screen.rows]
        assert names == ["w=0 euler×2", "w=0 euler×2 interval", "w=3 euler×2", "w=3 euler×2 interval"]
        assert [row["guide"] for row in screen.rows] == ["cfg", "interval"] * 2
        # Counted: w = 0 is one row a step for both; at w = 3 CFG is two rows a step, and interval
        # (t in [0.2, 0.8]) two at t = 0.5 but one at t = 0, outside it.
        assert [row["nfe"] for row in screen.rows] == [2, 2, 4, 3]
        shown = [table.get_row_at(i)[:3] for i in (2, 3)]  # name, n, nfe
        assert shown == [["w=3 euler×2", "30", "4.0"], ["w=3 euler×2 interval", "30", "3.0"]]
        chart = str(screen.query_one("#eval-chart", Static).content)
        assert "█" in chart and "w=3 euler×2 interval" in chart  # the names whole, methods told apart

        screen.query_one("#eval-methods").value = "cfg intervals"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any(n.message.startswith("methods: unknown guidance 'intervals'") for n in app._notifications)
        screen.query_one("#eval-methods").value = "zero-star"
        screen.query_one("#eval-grid").value = "fitted"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("fitted without zero-init" in n.message for n in app._notifications)
        assert table.row_count == 4  # a refused request leaves the last table
        screen.query_one("#eval-methods").value = "cfg"
        screen.query_one("#eval-grid").value = "uniform"

        screen.query_one("#eval-steps").value = "2,5"  # several step counts need the sweep mode
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("choose sweep" in n.message for n in app._notifications)
        screen.query_one("#eval-classifier").value = str(tmp_path / "missing.safetensors")
        screen.query_one("#eval-steps").value = "2"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("classifier:" in n.message and "does not exist" in n.message for n in app._notifications)


@pytest.mark.asyncio
async def test_the_form_holds_at_60x20_and_shows_focus(tmp_path: Path) -> None:
    """No widget over another or cut, labels clear of their values ("per class", not "per digit"),
    every focusable widget visibly focused."""
    model = save_checkpoint(tmp_path / "small.safetensors", new_model(SMALL, seed=0))
    app = CfgTuiApp(AppSettings(runs_folder=tmp_path / "runs", checkpoint=model))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        screen = app.screen
        labels = [str(label.content) for label in screen.query(".field-label").results(Label)]
        assert PER_CLASS_LABEL in labels and "per digit" not in labels
        assert_no_overlaps(screen)
        assert await focus_problems(pilot, screen) == []
