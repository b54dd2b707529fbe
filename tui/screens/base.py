"""What every screen of the app shares: typed access to the app's settings, and the one place
where a worker that failed is reported (as harlequin does, on ``Worker.StateChanged``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from textual import on
from textual.app import SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from tui.settings import AppSettings

if TYPE_CHECKING:
    from tui.app import CfgTuiApp

T = TypeVar("T")
USER_ERRORS = (ValueError, OSError)
"""Failures whose message is meant for the user as it is (the core's errors are ValueErrors)."""

LONGEST = 200
"""Characters of a failure's message shown: a notification is a line or two, never a dump."""
ALLOCATION = re.compile(r"(?:can't|cannot|tried to) allocate (?:memory: you tried to allocate )?(\d+) bytes")
"""torch's words when an allocation fails (a RuntimeError, on the CPU and on CUDA alike)."""


def one_line(error: BaseException) -> str:
    """An exception as one line: its message, with its type unless it is a user error."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, USER_ERRORS) and text:
        return _cut(text)
    return _cut(f"{type(error).__name__}: {text}" if text else type(error).__name__)


def _cut(text: str, longest: int = LONGEST) -> str:
    """``text`` in at most ``longest`` characters: its middle elided, as a long path usually is, so that
    what is said of it at the end (``File name too long``) stays."""
    if len(text) <= longest:
        return text
    head = (longest - 1) // 2
    return text[:head] + "…" + text[len(text) - (longest - 1 - head) :]


def failure_text(error: BaseException) -> str:
    """What a failed worker says: running out of memory and numbers too large for torch in words
    (torch says them as RuntimeErrors of several lines), anything else as :func:`one_line`.

    Any exception a worker raises ends here (Textual's workers catch ``Exception``), so a failure
    deep in torch or numpy is one notification, never the app's end."""
    text = str(error)
    first = text.strip().splitlines()[0] if text.strip() else ""
    if isinstance(error, MemoryError) or "out of memory" in text.lower() or ALLOCATION.search(text):
        match = ALLOCATION.search(text)
        size = f" (it asked for {int(match[1]) / 1024**3:,.1f} GiB at once)" if match else ""
        return f"not enough memory{size}: ask for fewer images or a smaller model"
    if isinstance(error, OverflowError) or "overflow when unpacking" in text.lower():
        return _cut(f"a number is too large for torch ({first or 'overflow'})")
    return one_line(error)


def report_failure(node: DOMNode, event: Worker.StateChanged) -> bool:
    """Notify once that ``event``'s worker failed (its state is ERROR); whether it had."""
    error = event.worker.error
    if event.state is not WorkerState.ERROR or error is None:
        return False
    node.notify(failure_text(error), title=f"{event.worker.name} failed", severity="error")
    return True


def user_path(name: str, text: str) -> Path:
    """A path typed in field ``name``, ``~`` expanded; a one-line ValueError naming the field when
    it is empty, or names a ``~user`` that does not exist (pathlib raises RuntimeError there)."""
    text = text.strip()
    if not text:
        raise ValueError(f"{name}: give a path")
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text.partition("/")[0]
        raise ValueError(f"{name}: {text}: there is no user named {user[1:]!r}") from None


def existing_path(name: str, text: str) -> Path:
    """:func:`user_path`, which must exist; a one-line ValueError naming the field if not, or if the
    system refuses to look (a name too long, a folder not readable)."""
    path = user_path(name, text)
    try:
        found = path.exists()
    except OSError as e:
        raise ValueError(f"{name}: {_cut(str(path), 60)}: {e.strerror or e}") from None
    if not found:
        raise ValueError(f"{name}: {path} does not exist")
    return path


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
        """``make()``, or None after one error notification (its ValueError names the bad field; an
        OSError is a path the system refused, e.g. a name too long)."""
        try:
            return make()
        except USER_ERRORS as e:
            self.notify(one_line(e), title=title, severity="error")
            return None

    @property
    def cfg_app(self) -> CfgTuiApp:
        return cast("CfgTuiApp", self.app)

    @property
    def settings(self) -> AppSettings:
        return self.cfg_app.settings

    @on(Worker.StateChanged)
    def _report_failed_worker(self, event: Worker.StateChanged) -> None:
        if report_failure(self, event):
            self.worker_failed(event.worker)

    def before_quit(self) -> None:
        """Keep what the next session should start with (the app is about to exit)."""

    def worker_failed(self, worker: Worker) -> None:
        """Put the screen back after ``worker`` failed (its error is already shown)."""
