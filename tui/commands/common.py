"""Option parsing shared by the commands: devices, lists, one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import typer

from core import parse as core_parse

T = TypeVar("T")


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else the CPU; ``cuda`` without a GPU is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise typer.BadParameter(f"--device must be auto, cpu or cuda, not {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise typer.BadParameter("--device cuda: no CUDA device is available here")
    return torch.device(name)


def _usage(parse: Callable[..., T], *args: object) -> T:
    """Run a core parser, turning its ValueError into a usage error (one line, exit 2)."""
    try:
        return parse(*args)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def parse_ints(option: str, value: str) -> tuple[int, ...]:
    return _usage(core_parse.parse_ints, option, value)


def parse_floats(option: str, value: str) -> tuple[float, ...]:
    return _usage(core_parse.parse_floats, option, value)


def parse_labels(value: str, num_classes: int = 10) -> tuple[int, ...]:
    return _usage(core_parse.parse_labels, "--digits", value, num_classes)
