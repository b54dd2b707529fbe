"""Parsing what users type (in the app's fields, and the lists of the command line); errors name the field."""

from __future__ import annotations

import math


def parse_whole(name: str, text: str) -> int:
    """A whole number, any sign (the range is for whoever uses it to check)."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{name}: {text.strip()!r} is not a whole number") from None


def parse_number(name: str, text: str) -> float:
    """A number as Python reads it, nan and inf included (the range is for whoever uses it to check)."""
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{name}: {text.strip()!r} is not a number") from None


def parse_int(name: str, text: str, low: int) -> int:
    number = parse_whole(name, text)
    if number < low:
        raise ValueError(f"{name} must be at least {low}, not {number}")
    return number


def parse_ints(name: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{name} takes comma-separated integers, not {text!r}") from None


def parse_floats(name: str, text: str) -> tuple[float, ...]:
    """Comma-separated finite numbers, e.g. guidance scales ``1,3,5``."""
    values = []
    for part in text.split(","):
        try:
            number = float(part)
        except ValueError:
            raise ValueError(f"{name}: {part.strip()!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{name}: {part.strip()} is not a finite number")
        values.append(number)
    return tuple(values)


def parse_labels(name: str, text: str, num_classes: int = 10) -> tuple[int, ...]:
    """Digits as ``0-9``, ``3,5,null`` (or ``n`` / ``∅``); the null label is ``num_classes``."""
    labels: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if part.lower() in ("null", "n", "∅", "none"):
            labels.append(num_classes)
            continue
        low, _, high = part.partition("-")
        try:
            span = range(int(low), int(high or low) + 1)
        except ValueError:
            raise ValueError(f"{name}: {part!r} is not a digit, a range like 0-9, or null") from None
        if not span or span.start < 0 or span.stop > num_classes:
            raise ValueError(f"{name}: {part!r} is outside 0-{num_classes - 1}")
        labels.extend(span)
    return tuple(labels)
