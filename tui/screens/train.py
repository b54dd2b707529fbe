"""The Train screen (placeholder until it is written)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class TrainScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Train")
        yield Footer()
