"""Form rows shared by the screens."""

from __future__ import annotations

from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label


def field(label: str, widget: Widget) -> Horizontal:
    """One line of a form: a fixed-width label, then the widget (styled by ``.field`` in the stylesheet)."""
    return Horizontal(Label(label, classes="field-label"), widget, classes="field")
