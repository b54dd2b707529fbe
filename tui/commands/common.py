"""What the commands share: the --data-root option, log lines, tables on stdout, option parsing with
one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console

from core.data import DATA_ROOT_ENV
from core.files import check_writable as core_check_writable
from core.metrics import check_feature_layer
from core.solvers import check_solver, check_steps
from tui import parse as tui_parse

T = TypeVar("T")

DataRoot = typer.Option(
    None,
    "--data-root",
    help=f"Data folder (default: ${DATA_ROOT_ENV}, else the per-user data folder).",
    show_default=False,
)


def log(message: str) -> None:
    """Progress and notes go to stderr, so that stdout stays the command's result."""
    typer.echo(message, err=True)


def wide_console() -> Console:
    """The terminal's width on a terminal; wide when piped, so that no table cell is cut."""
    return Console(width=None if sys.stdout.isatty() else 200)


def _usage(parse: Callable[..., T], *args: object, option: str = "") -> T:
    """Run a parser or check, turning its ValueError into a usage error (one line, exit 2),
    prefixed with ``option`` when the message does not name it."""
    try:
        return parse(*args)
    except ValueError as e:
        raise typer.BadParameter(f"{option}: {e}" if option else str(e)) from None


def parse_ints(option: str, value: str) -> tuple[int, ...]:
    return _usage(tui_parse.parse_ints, option, value)


def parse_floats(option: str, value: str) -> tuple[float, ...]:
    return _usage(tui_parse.parse_floats, option, value)


def parse_labels(value: str, num_classes: int = 10) -> tuple[int, ...]:
    return _usage(tui_parse.parse_labels, "--digits", value, num_classes)


def check_writable(option: str, path: Path | None) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if path is not None:
        _usage(core_check_writable, path, option)


def parse_solvers(option: str, value: str) -> list[str]:
    """Comma-separated solver names, each one of ``core.solvers.SOLVERS``."""
    return [_usage(check_solver, name.strip(), option=option) for name in value.split(",")]


def parse_steps(option: str, value: str) -> list[int]:
    """Comma-separated step counts, each 1 or more."""
    return [_usage(check_steps, steps, option=option) for steps in parse_ints(option, value)]


def parse_feature_layer(option: str, value: str) -> str:
    """One of ``core.metrics.FEATURE_LAYERS``."""
    return _usage(check_feature_layer, value, option=option)
