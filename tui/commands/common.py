"""Option parsing shared by the commands: devices, lists, one-line errors."""

from __future__ import annotations

import math

import torch
import typer


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else the CPU; ``cuda`` without a GPU is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise typer.BadParameter(f"--device must be auto, cpu or cuda, not {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise typer.BadParameter("--device cuda: no CUDA device is available here")
    return torch.device(name)


def parse_ints(option: str, value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"{option} takes comma-separated integers, not {value!r}") from None


def parse_floats(option: str, value: str) -> tuple[float, ...]:
    """Comma-separated finite numbers, e.g. ``--guidance 1,3,5``."""
    values = []
    for part in value.split(","):
        try:
            number = float(part)
        except ValueError:
            raise typer.BadParameter(f"{option}: {part.strip()!r} is not a number") from None
        if not math.isfinite(number):
            raise typer.BadParameter(f"{option}: {part.strip()} is not a finite number")
        values.append(number)
    return tuple(values)


def parse_labels(value: str, num_classes: int = 10) -> tuple[int, ...]:
    """Digits as ``0-9``, ``3,5,null`` (or ``n`` / ``∅``); the null label is ``num_classes``."""
    labels: list[int] = []
    for part in (p.strip() for p in value.split(",")):
        if part.lower() in ("null", "n", "∅", "none"):
            labels.append(num_classes)
            continue
        low, _, high = part.partition("-")
        try:
            span = range(int(low), int(high or low) + 1)
        except ValueError:
            raise typer.BadParameter(
                f"--digits: {part!r} is not a digit, a range like 0-9, or null"
            ) from None
        if not span or span.start < 0 or span.stop > num_classes:
            raise typer.BadParameter(f"--digits: {part!r} is outside 0-{num_classes - 1}")
        labels.extend(span)
    return tuple(labels)
