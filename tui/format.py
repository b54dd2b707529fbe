"""How numbers, runs and evaluation rows read, the same on the command line and in the app."""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from core.checkpoint import read_metadata
from core.run_files import RunStatus, is_finite
from core.runs import RunDir, RunError

if TYPE_CHECKING:  # core.sampling loads torch; cfg-tui runs reads this module without it
    from core.sampling import Sampler

NONE = "-"


def sample_command(
    checkpoint: Path,
    rows: Sequence[str],
    scales: Sequence[float],
    per_class: int,
    seed: int,
    sampler: Sampler,
) -> str:
    """The ``cfg-tui sample`` command line that makes these samples again (stored in exported PNGs)."""
    args = ["cfg-tui", "sample", "--checkpoint", str(checkpoint), "--digits", ",".join(rows),
            "--guidance", ",".join(f"{w:g}" for w in scales), "--per-class", str(per_class),
            "--seed", str(seed), "--solver", sampler.solver, "--steps", str(sampler.steps),
            "--grid", sampler.grid, "--shift", f"{sampler.shift:g}",
            "--guide", sampler.guide.describe()]  # fmt: skip
    if sampler.solver == "sde":
        args += ["--noise", f"{sampler.noise:g}"]
    return shlex.join(args)


def cfg_tui_version() -> str:
    try:
        return metadata.version("cfg-tui")
    except metadata.PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


def png_record(
    checkpoint: Path,
    rows: Sequence[str],
    scales: Sequence[float],
    per_class: int,
    seed: int,
    sampler: Sampler,
) -> dict[str, str]:
    """The text chunks of an exported PNG: what made it, one chunk per setting (the checkpoint's
    training step from its header, when it records one), and the command line that makes it again
    as the PNG's Comment."""
    try:
        step = read_metadata(checkpoint).get("step", "")
    except (OSError, ValueError):
        step = ""
    version = cfg_tui_version()
    return {
        "Software": f"cfg-tui {version}",
        "Comment": sample_command(checkpoint, rows, scales, per_class, seed, sampler),
        "cfg-tui version": version,
        "checkpoint": str(checkpoint),
        "step": step,
        "solver": sampler.solver,
        "steps": str(sampler.steps),
        "time grid": sampler.grid,
        "guidance method": sampler.guide.describe(),
        "guidance scales": ",".join(f"{w:g}" for w in scales),
        "seed": str(seed),
        "digits": ",".join(rows),
        "per class": str(per_class),
    }


def format_duration(seconds: float) -> str:
    """Short human durations: 45s, 3m05s, 2h07m, 3d04h."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def number(value: float | None, digits: int) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def format_loss(loss: float | None) -> str:
    return number(loss, 4)


@dataclass(frozen=True)
class RunRow:
    """One run as a row of text: what ``cfg-tui runs`` prints and the app's run list shows."""

    run: str
    state: str
    step: str
    loss: str
    updated: str
    device: str

    COLUMNS = ("run", "state", "step", "loss", "updated", "device")

    @classmethod
    def of(cls, run: RunDir, now: float | None = None) -> RunRow:
        """A run whose config.json or status.json cannot be used (damaged, half-written, foreign,
        not a file, gone) reads as ``unreadable``, not as an error: the list goes on with the others,
        and ``cfg-tui runs --detail RUN`` says what is wrong."""
        try:
            run.config()
            status = run.status()
        except RunError:
            return cls(run.path.name, "unreadable", NONE, NONE, NONE, NONE)
        return cls.of_status(run, status, now)

    @classmethod
    def of_status(cls, run: RunDir, status: RunStatus | None, now: float | None = None) -> RunRow:
        """The row of ``run`` at ``status``, just read (None: no status yet)."""
        state = run.liveness_of(status)
        if status is None:
            return cls(run.path.name, state, NONE, NONE, NONE, NONE)
        age = f"{format_duration((now or time.time()) - status.updated)} ago" if status.updated else NONE
        return cls(
            run.path.name,
            state,
            f"{status.step}/{status.total_steps}",
            format_loss(status.last_loss),
            age,
            status.device or NONE,
        )

    def cells(self) -> tuple[str, ...]:
        return astuple(self)


QUALITY_COLUMNS = ("step", "elapsed", "frechet", "accuracy", "samples", "sampler", "seconds")
"""A quality record (``core.quick_eval``) as a row: FD with ± its spread, and n beside it."""


def quality_cells(record: dict) -> tuple[str, ...]:
    """A quality record under :data:`QUALITY_COLUMNS`; a missing or unmeasured value reads ``-``.

    The record's step and elapsed were checked when it was read (``core.runs.parse_record``), what
    its ``quality`` holds was not: a value of the wrong kind (a damaged or foreign line) reads ``-``
    too, and a text is cut short."""
    q = record["quality"]
    elapsed, w = record.get("elapsed"), finite_or_none(q.get("guidance"))
    guidance = NONE if w is None else f"{w:g}"
    sampler = f"{short(q.get('solver', '?'))} × {short(q.get('steps', '?'))}, w = {guidance}"
    return (
        str(record.get("step", NONE)), NONE if elapsed is None else format_duration(elapsed),
        with_spread(finite_or_none(q.get("frechet")), finite_or_none(q.get("frechet_spread")), 2),
        number(finite_or_none(q.get("accuracy")), 3), short(q.get("samples", NONE)), sampler,
        number(finite_or_none(q.get("seconds")), 1),
    )  # fmt: skip


def finite_or_none(value: object) -> float | None:
    """``value`` if it is a finite number (a bool is not one), else None (shown as ``-``)."""
    return float(value) if is_finite(value) else None  # type: ignore[arg-type]


def short(value: object, width: int = 12) -> str:
    """``value`` as text on one line, at most ``width`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


EVAL_COLUMNS = (
    "name",
    "n",
    "nfe",
    "seconds",
    "accuracy",
    "frechet",
    "kid×1e3",
    "precision",
    "recall",
    "diversity",
)
"""Every distance with ± its spread (one standard error); FD is biased by n, so n stands beside it."""


def with_spread(value: float | None, spread: float | None, digits: int, scale: float = 1.0) -> str:
    if value is None:
        return NONE
    text = f"{value * scale:.{digits}f}"
    return text if spread is None else f"{text}±{spread * scale:.{digits}f}"


def eval_cells(row: dict) -> tuple[str, ...]:
    """An evaluation row (``core.evaluation``) under :data:`EVAL_COLUMNS`."""
    spread = lambda name, digits, scale=1.0: with_spread(row[name], row.get(f"{name}_spread"), digits, scale)  # noqa: E731
    return (
        row["name"], str(row["n"]), str(row["nfe"]), f"{row['seconds']:.1f}", f"{row['accuracy']:.3f}",
        spread("frechet", 2), spread("kid", 2, 1e3), spread("precision", 3), spread("recall", 3),
        number(row["diversity"], 3),
    )  # fmt: skip
