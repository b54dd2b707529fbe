"""``cfg-tui train`` and the app's Train form refuse the same settings, with the same words."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from textual.widgets import Input, Select

from tests.test_app_train import open_train, record_notifications
from tests.test_cli_sample import invoke
from tui.app import CfgTuiApp
from tui.settings import AppSettings

# (form field, text typed there, the same setting on the command line)
BAD = [
    ("steps", "0", ["--steps", "0"]),
    ("steps", "-5", ["--steps", "-5"]),
    ("batch-size", "0", ["--batch-size", "0"]),
    ("batch-size", "1000", ["--batch-size", "1000"]),  # more than the 64 made-up images
    ("lr", "0", ["--lr", "0"]),
    ("lr", "-1e-3", ["--lr", "-1e-3"]),
    ("lr", "nan", ["--lr", "nan"]),
    ("lr", "inf", ["--lr", "inf"]),
    ("eta", "1", ["--eta", "1"]),
    ("eta", "-0.1", ["--eta", "-0.1"]),
    ("eta", "nan", ["--eta", "nan"]),
    ("nproc", "0", ["--nproc", "0"]),
    ("nproc", "-2", ["--nproc", "-2"]),
    ("run-name", "a/b", ["--name", "a/b"]),
    ("run-name", "..", ["--name", ".."]),
    ("run-name", "-x", ["--name=-x"]),
    ("run-name", "taken", ["--name", "taken"]),
]
if not torch.cuda.is_available():
    BAD.append(("device", "cuda", ["--device", "cuda"]))


@pytest.mark.asyncio
async def test_cli_and_form_refuse_the_same_settings_with_the_same_message(
    tmp_path: Path, data_root: Path, cli_env: dict, capsys: pytest.CaptureFixture
) -> None:
    runs = tmp_path / "runs"
    (runs / "taken").mkdir(parents=True)
    cli_errors = []
    for _, _, args in BAD:
        code, _, err = invoke(capsys, "train", "--preset", "cpu", "--runs", str(runs), *args)
        lines = err.strip().splitlines()
        assert code == 2 and lines[-1].startswith("cfg-tui: error: "), (args, err)
        cli_errors.append(lines[-1].removeprefix("cfg-tui: error: "))

    form_errors = []
    app = CfgTuiApp(AppSettings(runs_folder=runs, data_root=data_root))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        seen = record_notifications(app)
        for field, text, _ in BAD:
            widget = screen.query_one(f"#{field}")
            if isinstance(widget, Select):
                widget.value = text
            else:
                assert isinstance(widget, Input)
                widget.value = text
            before = len(seen)
            await pilot.press("ctrl+g")
            await app.workers.wait_for_complete()
            await pilot.pause()
            errors = [message for message, severity in seen[before:] if severity == "error"]
            assert len(errors) == 1, (field, text, seen[before:])
            form_errors.append(errors[0])
            widget.value = "auto" if isinstance(widget, Select) else ""

    assert form_errors == cli_errors
    assert sorted(p.name for p in runs.iterdir()) == ["taken"]  # neither made a run
