"""``cfg-tui runs``: the runs in a folder, with their state."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from core.runs import RunError, default_runs_folder, find_runs
from tui.format import RunRow


def runs(
    folder: Path | None = typer.Argument(None, help="Folder of runs (default: $CFG_TUI_RUNS or ./runs)."),
) -> None:
    """List the runs in a folder: state (a running run whose process is gone is dead), step, loss, age."""
    folder = folder or default_runs_folder()
    if not folder.is_dir():
        raise RunError(f"{folder} is not a folder")
    found = find_runs(folder)
    if not found:
        typer.echo(f"no runs in {folder}")
        return
    table = Table(*RunRow.COLUMNS)
    now = time.time()
    for run in found:
        table.add_row(*RunRow.of(run, now).cells())
    Console().print(table)
