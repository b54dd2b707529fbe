"""Parsing what users type (in the app's fields, and the lists of the command line); errors name the field.

Strict on purpose: ASCII digits only (Python's ``int`` also reads ``１``, ``1_000`` and ``٣``, which
a user did not mean as a number, or means to break us with), and no whole number beyond 64 bits
(torch takes nothing larger). Ranges are :mod:`core.configs`' bounds, checked where the value is used.
"""

from __future__ import annotations

import math
import re

from core.configs import Bound

INT64_MAX = 2**63 - 1
_WHOLE = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)", re.I)


def whole_number(text: str) -> int:
    """A whole number in ASCII digits, with an optional sign, within 64 bits; ValueError if not."""
    text = text.strip()
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} is not a whole number")
    if len(text) > 20 or abs(int(text)) > INT64_MAX:  # the length first: int() of a huge text is slow
        raise ValueError(f"{text[:24]}{'…' if len(text) > 24 else ''} is too large a number")
    return int(text)


def real_number(text: str) -> float:
    """A decimal number in ASCII (``1.5``, ``-2e-3``; ``nan`` and ``inf`` are read, for the range check
    of whoever uses it to refuse with its own words); ValueError if not."""
    text = text.strip()
    if len(text) > 40 or not _NUMBER.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not a number")
    return float(text)


def parse_whole(name: str, text: str, bound: Bound | None = None) -> int:
    """A whole number, any sign unless ``bound`` says."""
    try:
        number = whole_number(text)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    return number if bound is None else int(bound.check(name, number))


def parse_number(name: str, text: str, bound: Bound | None = None) -> float:
    """A number (nan and inf included unless ``bound`` refuses them: the range is for whoever uses it)."""
    try:
        number = real_number(text)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    return number if bound is None else bound.check(name, number)


def parse_int(name: str, text: str, low: int) -> int:
    number = parse_whole(name, text)
    if number < low:
        raise ValueError(f"{name} must be at least {low}, not {number}")
    return number


def parse_ints(name: str, text: str) -> tuple[int, ...]:
    numbers = []
    for part in text.split(","):
        if not _WHOLE.fullmatch(part.strip()):
            raise ValueError(f"{name} takes comma-separated integers, not {text[:60]!r}")
        numbers.append(parse_whole(name, part))  # a number beyond 64 bits is named as such
    return tuple(numbers)


def parse_floats(name: str, text: str) -> tuple[float, ...]:
    """Comma-separated finite numbers, e.g. guidance scales ``1,3,5``."""
    values = []
    for part in text.split(","):
        try:
            number = real_number(part)
        except ValueError:
            raise ValueError(f"{name}: {part.strip()[:40]!r} is not a number") from None
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
        low, dash, high = part.partition("-")
        try:
            first = whole_number(low)
            last = whole_number(high) if dash else first  # "0-" is not a range
        except ValueError:
            raise ValueError(f"{name}: {part[:40]!r} is not a digit, a range like 0-9, or null") from None
        if first > last or first < 0 or last >= num_classes:
            raise ValueError(f"{name}: {part!r} is outside 0-{num_classes - 1}")
        labels.extend(range(first, last + 1))
    return tuple(labels)
