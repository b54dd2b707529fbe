"""What the commands share: the --data-root option, log lines, tables on stdout, option parsing with
one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

from core.choices import (
    GRIDS,
    check_feature_layer,
    check_grid,
    check_guidance,
    check_noise,
    check_sampling_memory,
    check_seed,
    check_solver,
    check_steps,
    describe_preset,
)
from core.configs import Bound, UNetConfig
from core.data import DATA_ROOT_ENV
from core.files import check_folder as core_check_folder
from core.files import check_writable as core_check_writable
from tui import parse as tui_parse

# Every command module is imported for --help, so nothing here may load torch (2-3 s): the modules
# that do are imported inside the functions that sample or measure.
if TYPE_CHECKING:
    from core.guidance import Guidance
    from core.sampling import Sampler

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


# --- numbers on the command line: typer's parsers, strict, and the ranges core.configs sets ------


def whole(bound: Bound | None = None) -> Callable[[object], int]:
    """A typer ``parser`` for a whole-number option: ASCII digits only (typer alone reads ``1_000``),
    within 64 bits and inside ``bound`` when given (else the range is checked where the value is
    used, in the words the app's form uses too); a usage error names the option."""

    def parse(value: object) -> int:
        if not isinstance(value, str):  # typer passes the default through the parser too
            return value  # type: ignore[return-value]
        return _checked(tui_parse.whole_number, value, bound)

    return parse


def number(bound: Bound | None = None) -> Callable[[object], float]:
    """A typer ``parser`` for a number option: ASCII decimal only, inside ``bound`` when given (nan and
    inf are read for a later range check to refuse; a bound refuses them here)."""

    def parse(value: object) -> float:
        if not isinstance(value, str):
            return value  # type: ignore[return-value]
        return _checked(tui_parse.real_number, value, bound)

    return parse


def _checked(read: Callable[[str], T], text: str, bound: Bound | None) -> T:
    try:
        value = read(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    problem = bound.problem(value) if bound is not None else None  # type: ignore[arg-type]
    if problem:
        raise typer.BadParameter(problem)
    return value


def parse_ints(option: str, value: str) -> tuple[int, ...]:
    return _usage(tui_parse.parse_ints, option, value)


def parse_floats(option: str, value: str) -> tuple[float, ...]:
    return _usage(tui_parse.parse_floats, option, value)


def parse_guidance(option: str, value: str) -> tuple[float, ...]:
    """Comma-separated guidance scales, each finite and in core's range."""
    return _usage(check_guidance, parse_floats(option, value), option=option)


def parse_seeds(option: str, value: str) -> tuple[int, ...]:
    """Comma-separated seeds, each 0 to 2^63 - 1."""
    return tuple(_usage(check_seed, seed, option=option) for seed in parse_ints(option, value))


def parse_labels(value: str, num_classes: int = 10) -> tuple[int, ...]:
    return _usage(tui_parse.parse_labels, "--digits", value, num_classes)


def check_sampling(config: UNetConfig, images: int, device_type: str, option: str = "--per-class") -> None:
    """Refuse, before sampling, a batch of ``images`` that would not fit in memory (with the estimate)."""
    try:
        check_sampling_memory(config, images, device_type)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint=option) from None


def check_writable(option: str, path: Path | None) -> None:
    """Refuse an output path that cannot be written, before any work is done (one line naming
    ``option``: a folder, device, FIFO, /proc, a missing or read-only folder)."""
    if path is not None:
        core_check_writable(path, option)


def check_folder(option: str, path: Path | None) -> None:
    """Refuse an output folder that cannot be made or written, before any work is done."""
    if path is not None:
        core_check_folder(path, option)


def parse_solvers(option: str, value: str) -> list[str]:
    """Comma-separated solver names, each one of ``core.solvers.SOLVERS``."""
    return [_usage(check_solver, name.strip(), option=option) for name in value.split(",")]


def parse_steps(option: str, value: str) -> list[int]:
    """Comma-separated step counts, each 1 or more."""
    return [_usage(check_steps, steps, option=option) for steps in parse_ints(option, value)]


def parse_feature_layer(option: str, value: str) -> str:
    """One of ``core.metrics.FEATURE_LAYERS``."""
    return _usage(check_feature_layer, value, option=option)


GUIDE_HELP = (
    "Guidance method, with parameters as name:key=value,...: cfg (the lab's) · "
    "interval:start=0.2,end=0.8 (CFG only for t in [start, end]) · zero-star:zero_steps=1 (CFG-Zero*) · "
    "apg:eta=0,rescale=inf,momentum=0 (adaptive projected guidance) · auto:checkpoint=FILE "
    "(autoguidance by a weaker snapshot; default: the bundled guide, or the run's snapshot at a tenth "
    "of the step; it wants w near 1.5-2)."
)


def parse_guide(option: str, spec: str) -> Guidance:
    """One guidance method from its ``name:key=value,...`` form."""
    from core.guidance import parse_guidance

    return _usage(parse_guidance, spec, option=option)


def sampler_options(
    preset: str,
    solver: str | None = None,
    steps: int | None = None,
    grid: str | None = None,
    shift: float | None = None,
    guide: str | None = None,
    noise: float | None = None,
) -> Sampler:
    """The sampler the options describe: ``--preset`` with any of the others replacing its settings."""
    from core.sampling import build_sampler

    method = parse_guide("--guide", guide) if guide is not None else None
    if noise is not None:
        _usage(check_noise, noise, option="--noise")
    if solver is not None:
        _usage(check_solver, solver, option="--solver")
    if grid is not None:
        _usage(check_grid, grid, option="--grid")
    return _usage(
        lambda: build_sampler(
            preset, solver=solver, steps=steps, grid=grid, shift=shift, guide=method, noise=noise
        )
    )


PRESET_HELP = (
    f"lab: the lab's sampler (Euler × 99, uniform grid, CFG); fast: {describe_preset('fast')} "
    "(measured to equal lab's quality on the bundled model)."
)
PresetOption = typer.Option("lab", "--preset", help=PRESET_HELP)
"""eval's: the lab's sampler, the reference the others are measured against (sample has its own)."""
GridOption = typer.Option(
    None, help=f"Time grid: {', '.join(GRIDS)} (fitted: to this model, once, stored beside it)."
)
ShiftOption = typer.Option(
    None, parser=number(), help="The shifted grid's shift s (SD3's; default 3: more steps near noise)."
)


def parse_grids(option: str, value: str) -> list[str]:
    """Comma-separated grid names, each one of ``core.grids.GRIDS``."""
    return [_usage(check_grid, name.strip(), option=option) for name in value.split(",")]


def sampler_cells(
    solvers: list[str], step_counts: list[int], methods: list[Guidance], grids: list[str]
) -> list[Sampler]:
    """Every solver × steps × method × grid sampler (a bad combination: one line, exit 2)."""
    from core.evaluation import samplers

    return _usage(samplers, solvers, step_counts, methods, grids)


def with_method(sampler: Sampler, method: Guidance) -> Sampler:
    """``sampler`` with another guidance method (one that does not fit it: one line, exit 2)."""
    return _usage(lambda: replace(sampler, guide=method), option="--guide")
