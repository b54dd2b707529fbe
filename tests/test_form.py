"""The form's Select survives being given a value before it has composed (Textual issue #6581)."""

import pytest
from textual.app import App
from textual.widgets import Static

from tui.widgets.form import FormSelect, _SelectCurrent, choose


@pytest.mark.asyncio
async def test_a_value_before_the_label_is_mounted_shows_once_it_is() -> None:
    app = App()
    async with app.run_test() as pilot:
        line = _SelectCurrent("placeholder")
        app.screen.mount(line)  # not awaited: the label is not composed yet
        assert not line.query("#label")
        line.update("midpoint")  # Textual's SelectCurrent raises NoMatches here
        await pilot.pause()
        await pilot.pause()
        assert str(line.query_one("#label", Static).render()) == "midpoint"


@pytest.mark.asyncio
async def test_choose_is_a_compact_select_starting_on_its_value() -> None:
    app = App()
    async with app.run_test() as pilot:
        await app.screen.mount(choose(["euler", "midpoint"], "midpoint", "solver"))
        await pilot.pause()
        select = app.screen.query_one("#solver", FormSelect)
        assert select.value == "midpoint" and select.compact
        assert str(select.query_one("#label", Static).render()) == "midpoint"
