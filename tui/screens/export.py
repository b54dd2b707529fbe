"""Confirm where the Sample screen's export goes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label

from core.files import check_writable
from tui.screens.base import USER_ERRORS, one_line, user_path

NAME = "export"
"""The dialog's word in its errors."""


@dataclass
class ExportChoice:
    png: Path
    npz: Path | None


def export_choice(text: str, with_npz: bool) -> ExportChoice:
    """The PNG (``.png`` added when missing) and the .npz beside it, each checked as ``cfg-tui sample
    --out`` checks it (:func:`core.files.check_writable`: no folder, FIFO or device, a folder that
    takes a file); a one-line ValueError naming what is wrong. The path is checked as typed too:
    ``/dev/null`` is refused, not written beside as ``/dev/null.png``."""
    png = user_path(NAME, text)
    check_writable(png, NAME)
    if png.suffix.lower() != ".png":
        png = png.with_suffix(".png")
    npz = png.with_suffix(".npz") if with_npz else None
    for path in (png, npz):
        if path is not None:
            check_writable(path, NAME)
    return ExportChoice(png, npz)


class ExportScreen(ModalScreen[ExportChoice | None]):
    """A path for the PNG (and optionally the .npz beside it); enter confirms, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: Path) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="export"):
            yield Label("Export the grid as PNG to:")
            yield Input(str(self.default), id="export-path")
            yield Checkbox("also the samples as .npz", value=True, id="export-npz")
            yield Label("enter: export   escape: cancel", classes="form-label")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Close with the paths; a path that cannot be written is one notification, and the dialog
        stays open to correct it."""
        try:
            choice = export_choice(event.value, self.query_one("#export-npz", Checkbox).value)
        except USER_ERRORS as e:
            self.notify(one_line(e), title="Cannot export", severity="error")
            return
        self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
