"""Confirm where the Sample screen's export goes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label


@dataclass
class ExportChoice:
    png: Path
    npz: Path | None


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
        png = Path(event.value).expanduser()
        if png.suffix.lower() != ".png":
            png = png.with_suffix(".png")
        npz = png.with_suffix(".npz") if self.query_one("#export-npz", Checkbox).value else None
        self.dismiss(ExportChoice(png, npz))

    def action_cancel(self) -> None:
        self.dismiss(None)
