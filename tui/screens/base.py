"""What every screen of the app shares: typed access to the app's settings, and the one place
where a worker that failed is reported (as harlequin does, on ``Worker.StateChanged``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from textual import on
from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from tui.settings import AppSettings

if TYPE_CHECKING:
    from tui.app import CfgTuiApp

T = TypeVar("T")
USER_ERRORS = (ValueError, OSError)
"""Failures whose message is meant for the user as it is (the core's errors are ValueErrors)."""


def one_line(error: BaseException) -> str:
    """An exception as one line: its message, with its type unless it is a user error."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, USER_ERRORS) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class AppScreen(Screen[None]):
    """A screen of :class:`CfgTuiApp`. Its workers run with ``exit_on_error=False``: a failure
    becomes one notification here and the app stays up."""

    HELP_KEYS: list[Binding] = []
    """Keys of the screen's widgets (not its bindings) that the help screen should list too."""
    PALETTE: list[tuple[str, str, str]] = []
    """The screen's actions in the command palette: (title, what it does, action name)."""

    def commands(self) -> list[SystemCommand]:
        """:attr:`PALETTE` as commands (the app adds them while this screen is shown)."""
        return [
            SystemCommand(title, what, getattr(self, f"action_{name}")) for title, what, name in self.PALETTE
        ]

    def checked(self, make: Callable[[], T], title: str) -> T | None:
        """``make()``, or None after one error notification (its ValueError names the bad field)."""
        try:
            return make()
        except ValueError as e:
            self.notify(str(e), title=title, severity="error")
            return None

    @property
    def cfg_app(self) -> CfgTuiApp:
        return cast("CfgTuiApp", self.app)

    @property
    def settings(self) -> AppSettings:
        return self.cfg_app.settings

    @on(Worker.StateChanged)
    def _report_failed_worker(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR or event.worker.error is None:
            return
        self.notify(one_line(event.worker.error), title=f"{event.worker.name} failed", severity="error")
        self.worker_failed(event.worker)

    def before_quit(self) -> None:
        """Keep what the next session should start with (the app is about to exit)."""

    def worker_failed(self, worker: Worker) -> None:
        """Put the screen back after ``worker`` failed (its error is already shown)."""
