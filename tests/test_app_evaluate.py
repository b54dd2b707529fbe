"""The Evaluate screen runs eval in a worker and shows the rows and a bar chart."""

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from core.checkpoint import save_checkpoint
from core.data import load_split
from core.metrics import save_classifier, train_classifier
from core.trainer import new_model
from tests.test_app_sample import SMALL
from tui.app import CfgTuiApp
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
            "steps": "2",
            "per-class": "3",
            "classifier": str(classifier),
        }.items():
            screen.query_one(f"#eval-{name}").value = value
        await pilot.press("ctrl+g")
        table = screen.query_one(DataTable)
        for _ in range(400):
            await pilot.pause(0.05)
            if table.row_count == 2 and "rows" in str(screen.query_one("#eval-status", Static).content):
                break
        assert table.row_count == 2
        assert [row["nfe"] for row in screen.rows] == [2, 4]  # w = 0 is one call a step, w = 3 two
        assert "█" in str(screen.query_one("#eval-chart", Static).content)

        screen.query_one("#eval-steps").value = "2,5"  # several step counts need the sweep mode
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("choose sweep" in n.message for n in app._notifications)
        screen.query_one("#eval-classifier").value = str(tmp_path / "missing.safetensors")
        screen.query_one("#eval-steps").value = "2"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("classifier:" in n.message and "does not exist" in n.message for n in app._notifications)
