"""The help screen is made from the bindings, so it lists every key and cannot drift from them."""

from pathlib import Path

import pytest
from textual.binding import Binding

from tests.layout import assert_no_overlaps
from tui.app import CfgTuiApp, screen_classes
from tui.screens.help import HelpScreen, close_line, help_markdown, key_rows
from tui.settings import AppSettings


def test_every_binding_of_the_app_and_its_screens_is_in_the_help() -> None:
    screens = {name: [*mode.BINDINGS, *mode.HELP_KEYS] for name, mode in screen_classes().items()}
    text = help_markdown(CfgTuiApp.BINDINGS, screens)
    for bindings in [CfgTuiApp.BINDINGS, *screens.values()]:
        for binding in Binding.make_bindings(bindings):
            assert (binding.tooltip or binding.description) in text, binding
    for section in ("Everywhere", "Train", "Sample", "Evaluate"):
        assert f"## {section}" in text
    assert "| `f1, ?` | this help |" in text and "| `0 … 9` | toggle a digit" in text
    assert "| `+, =` |" in text and "question_mark" not in text  # keys as the user types them
    assert "| `ctrl+x` | stop the followed run (it checkpoints first) |" in text


def test_keys_that_do_the_same_share_a_row() -> None:
    rows = key_rows([Binding("a", "x", "one"), Binding("b", "y", "two"), Binding("c", "z", "one")])
    assert rows == [("a, c", "one"), ("b", "two")]


def test_the_first_line_says_how_to_close_it() -> None:
    assert close_line() == "Help · esc, f1, q or ? closes it"


@pytest.mark.asyncio
async def test_each_key_it_names_closes_it_and_it_fits_60x20(tmp_path: Path) -> None:
    app = CfgTuiApp(AppSettings(runs_folder=tmp_path / "runs"))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("ctrl+n")  # over a screen of this suite (the Sample screen is tested on its own)
        await pilot.pause()
        for key in ("escape", "f1", "q", "question_mark"):
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            assert str(app.screen.query_one("#help").border_title) == close_line()
            assert_no_overlaps(app.screen)
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen), key
