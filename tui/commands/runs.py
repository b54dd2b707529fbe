"""``cfg-tui runs``: the runs in a folder, with their state."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from core.runs import RunError, default_runs_folder, find_runs


def age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


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
    table = Table("run", "state", "step", "last loss", "updated", "device")
    now = time.time()
    for run in found:
        try:
            status = run.status()
        except RunError:
            status = {}
        loss = status.get("last_loss")
        table.add_row(
            run.path.name,
            run.liveness() if status else "unreadable",
            f"{status.get('step', 0)}/{status.get('total_steps', '?')}",
            f"{loss:.4f}" if isinstance(loss, float) else "-",
            f"{age(now - status['updated'])} ago" if "updated" in status else "-",
            str(status.get("device", "-")),
        )
    Console().print(table)
