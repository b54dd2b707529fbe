"""The runs in the runs folder, one row each: the place to attach to, resume or sample from a run."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from core.runs import RunDir, find_runs
from tui.format import RunRow

COLUMNS = RunRow.COLUMNS[:4]
"""Name, liveness, step/total and last loss: what fits beside the chart at 80 columns."""


def run_row(run: RunDir) -> tuple[str, ...]:
    return RunRow.of(run).cells()[: len(COLUMNS)]


class RunList(DataTable):
    """A DataTable keyed by run path, refreshed in place so the cursor stays on the same run."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._paths: list[str] = []

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column, key=column)

    def refresh_runs(self, folder: Path) -> None:
        """Re-read every run's status; rebuild only when the set of runs changed (newest first)."""
        runs = find_runs(folder)
        paths = [str(run.path) for run in runs]
        if paths != self._paths:
            self._rebuild(runs)
            return
        for run in runs:
            for column, value in zip(COLUMNS, run_row(run), strict=True):
                self.update_cell(str(run.path), column, value, update_width=True)

    def _rebuild(self, runs: list[RunDir]) -> None:
        selected = self.selected_path()
        self.clear()
        for run in runs:
            self.add_row(*run_row(run), key=str(run.path))
        self._paths = [str(run.path) for run in runs]
        if selected is not None and str(selected) in self._paths:
            self.move_cursor(row=self._paths.index(str(selected)))

    def selected_path(self) -> Path | None:
        """The run under the cursor, or None when the list is empty."""
        if not self._paths or not 0 <= self.cursor_row < len(self._paths):
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return Path(row_key.value) if row_key.value is not None else None

    def select_path(self, path: Path) -> None:
        """Put the cursor on ``path`` (the run being followed), if it is listed."""
        if str(path) in self._paths:
            self.move_cursor(row=self._paths.index(str(path)))
