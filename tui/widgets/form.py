"""Form rows shared by the screens."""

from __future__ import annotations

from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Label


def field(label: str, widget: Widget) -> Horizontal:
    """One line of a form: a fixed-width label, then the widget (styled by ``.field`` in the stylesheet)."""
    return Horizontal(Label(label, classes="field-label"), widget, classes="field")


def action_button(label: str, key: str, action: str, id: str) -> Button:
    """The form's main button: runs the screen's ``action``, as its ``key`` does (shown on it)."""
    return Button(f"{label}  {key}", id=id, variant="primary", compact=True, action=f"screen.{action}")
