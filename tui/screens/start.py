"""What the app shows while torch and the screens load: painted at once, from torch-free code."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Header, LoadingIndicator, Static

from tui.widgets.footer import FittedFooter


class StartScreen(Screen[None]):
    """The first paint: the app's frame and what it is waiting for; replaced by the Sample screen
    once the background import is done (or showing why it failed)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Middle(), Center():
            yield Static("loading torch and the screens…", id="start-status")
            yield LoadingIndicator(id="start-spinner")
        yield FittedFooter()

    def on_mount(self) -> None:
        self.sub_title = "starting"

    def failed(self, reason: str) -> None:
        """The import failed: say why (the app stays up; ctrl+q quits)."""
        self.query_one("#start-spinner").display = False
        self.query_one("#start-status", Static).update(f"cannot start: {reason}\nctrl+q quits")
