"""Form rows shared by the screens."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Button, Label, Select
from textual.widgets._select import SelectCurrent, SelectOverlay


def field(label: str, widget: Widget) -> Horizontal:
    """One line of a form: a fixed-width label, then the widget (styled by ``.field`` in the stylesheet)."""
    return Horizontal(Label(label, classes="field-label"), widget, classes="field")


def action_button(label: str, key: str, action: str, id: str) -> Button:
    """The form's main button: runs the screen's ``action``, as its ``key`` does (shown on it)."""
    return Button(f"{label}  {key}", id=id, variant="primary", compact=True, action=f"screen.{action}")


class _SelectCurrent(SelectCurrent):
    """Select's current-value line, safe to update before its label is mounted."""

    def update(self, label: object) -> None:
        # Textual issue #6581 (open in 8.2.8): a Select mounted while the event loop is busy (the
        # app's screens arrive from a worker) sets its value before this line has composed its
        # label, and the query raises NoMatches, which ends the app. Try again after a refresh.
        try:
            super().update(label)  # type: ignore[arg-type]
        except NoMatches:
            self.call_after_refresh(self.update, label)


class FormSelect(Select[str]):
    """A compact Select of names, one always chosen, that survives a busy mount (see above)."""

    def compose(self) -> ComposeResult:
        # As Select.compose, with the safe current-value line.
        yield _SelectCurrent(self.prompt)
        yield SelectOverlay(type_to_search=self._type_to_search).data_bind(compact=Select.compact)


def choose(names: Iterable[str], value: str, id: str) -> FormSelect:
    """A form's choice among ``names``, starting on ``value``."""
    return FormSelect([(name, name) for name in names], value=value, allow_blank=False, id=id, compact=True)
