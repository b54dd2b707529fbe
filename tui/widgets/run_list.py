"""The runs in the runs folder, one row each: the place to attach to, resume or sample from a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from core.runs import RunDir, find_runs
from tui.format import NONE, RunRow

COLUMNS = RunRow.COLUMNS[:4]
"""Name, liveness, step/total and last loss: what fits beside the chart at 80 columns."""
FEWEST_COLUMNS = 2
"""Name and state are always shown; a table narrower than them scrolls sideways."""
MARK = "✓"
"""The row label of a run marked for comparison."""
RUN_FILE_ERRORS = (ValueError, OSError, TypeError, ArithmeticError, KeyError)
"""What reading a damaged, foreign or vanishing run can raise. The core's readers say what is wrong
as a RunError (a ValueError); the rest would be a value they let through (a null or huge pid in
status.json, as os.kill refuses it; Infinity in a time). The app reads runs on timers: any of these
is the run shown as unreadable, never the app's end."""
UNREADABLE = "unreadable"


def run_row(run: RunDir) -> tuple[str, ...]:
    """The run's cells; a run that cannot be read now is listed as unreadable (the list goes on)."""
    try:
        return RunRow.of(run).cells()[: len(COLUMNS)]
    except RUN_FILE_ERRORS:
        return (run.path.name, UNREADABLE, *[NONE] * (len(COLUMNS) - 2))


def columns_that_fit(rows: list[tuple[str, ...]], room: int, padding: int) -> int:
    """How many of :data:`COLUMNS`, from the left, fit ``room`` cells whole: a narrow pane shows
    fewer columns rather than a loss cut to "0.2" at its edge."""
    widths = [
        max([cell_len(column), *(cell_len(row[i]) for row in rows)]) + 2 * padding
        for i, column in enumerate(COLUMNS)
    ]
    shown = len(COLUMNS)
    while shown > FEWEST_COLUMNS and sum(widths[:shown]) > room:
        shown -= 1
    return shown


class RunList(DataTable):
    """A DataTable keyed by run path, refreshed in place. The cursor sits on the followed run unless
    the user moves it (keys or a click): then the actions target the run under it (:meth:`target`).
    Space marks runs to compare (a ✓ beside them)."""

    # Not in the footer: the list's title says it (the footer's room goes to the screen's keys).
    BINDINGS = [Binding("space", "mark", "Compare", show=False, tooltip="mark or unmark the run to compare")]

    @dataclass
    class MarksChanged(Message):
        """The runs marked for comparison, in the list's order."""

        paths: list[Path]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.marked: list[Path] = []
        self._paths: list[str] = []
        self._rows: list[tuple[str, ...]] = []
        self._shown = len(COLUMNS)
        self.followed: Path | None = None
        self.user_moved = False
        """The user put the cursor where it is: the actions act there, not on the followed run."""

    def follow(self, path: Path) -> None:
        """The screen follows ``path``: the cursor goes there, and the actions target it again."""
        self.followed, self.user_moved = path, False
        self.select_path(path)

    def target(self) -> Path | None:
        """The run an action acts on: the one the user put the cursor on, else the followed one."""
        return self.selected_path() if self.user_moved else self.followed

    # The user's moves (programmatic ones, from follow() and rebuilding, do not come through here).
    def _moved(self) -> None:
        self.user_moved = True

    def action_cursor_up(self) -> None:
        self._moved()
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self._moved()
        super().action_cursor_down()

    def action_page_up(self) -> None:
        self._moved()
        super().action_page_up()

    def action_page_down(self) -> None:
        self._moved()
        super().action_page_down()

    def action_scroll_top(self) -> None:
        self._moved()
        super().action_scroll_top()

    def action_scroll_bottom(self) -> None:
        self._moved()
        super().action_scroll_bottom()

    def on_click(self, event: events.Click) -> None:
        self._moved()

    def action_mark(self) -> None:
        """Mark the run under the cursor for comparison, or unmark it."""
        path = self.selected_path()
        if path is None:
            return
        self.marked = [p for p in self.marked if p != path] if path in self.marked else [*self.marked, path]
        self._rebuild()
        self.post_message(self.MarksChanged(self.marked_paths()))

    def clear_marks(self) -> None:
        if self.marked:
            self.marked = []
            self._rebuild()
            self.post_message(self.MarksChanged([]))

    def marked_paths(self) -> list[Path]:
        """The marked runs still listed, in the list's order (newest first)."""
        return [Path(p) for p in self._paths if Path(p) in self.marked]

    def on_mount(self) -> None:
        self._rebuild()

    def on_resize(self, event: events.Resize) -> None:
        if self._fitting() != self._shown:
            self._rebuild()

    def _fitting(self) -> int:
        return columns_that_fit(self._rows, self.scrollable_content_region.width, self.cell_padding)

    def refresh_runs(self, folder: Path) -> None:
        """Re-read every run's status; rebuild only when the set of runs or the columns that fit
        changed (newest first)."""
        runs = find_runs(folder)
        paths = [str(run.path) for run in runs]
        rows = [run_row(run) for run in runs]
        changed = paths != self._paths
        self._paths, self._rows = paths, rows
        if changed or self._fitting() != self._shown:
            self._rebuild()
            return
        for path, row in zip(paths, rows, strict=True):
            for column, value in zip(COLUMNS[: self._shown], row, strict=False):
                self.update_cell(path, column, value, update_width=True)

    def _rebuild(self) -> None:
        """The table anew from the rows read last, with the columns that fit; the cursor stays on
        its run (the followed one, unless the user moved it)."""
        selected = self.selected_path()
        self.clear(columns=True)
        self._shown = self._fitting()
        for column in COLUMNS[: self._shown]:
            self.add_column(column, key=column)
        for path, row in zip(self._paths, self._rows, strict=True):
            label = Text(MARK, style="bold") if Path(path) in self.marked else None
            self.add_row(*row[: self._shown], key=path, label=label)
        keep = selected if self.user_moved or self.followed is None else self.followed
        if keep is not None and str(keep) in self._paths:
            self.move_cursor(row=self._paths.index(str(keep)))

    def selected_path(self) -> Path | None:
        """The run under the cursor, or None when the list is empty."""
        if not self.row_count or not 0 <= self.cursor_row < self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return Path(row_key.value) if row_key.value is not None else None

    def select_path(self, path: Path) -> None:
        """Put the cursor on ``path`` (the run being followed), if it is listed."""
        if str(path) in self._paths:
            self.move_cursor(row=self._paths.index(str(path)))
