"""``cfg-tui runs``: the runs in a folder, with their state; ``--detail RUN``: one run's settings,
its loss at a few points and its quality during training; ``--compare RUN RUN ...``: runs side by side
(a table, ``--json``, ``--chart`` PNG)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from core.compare import RunSummary, check_axis, summarize, write_compare_png
from core.configs import TrainConfig
from core.runs import (
    RunConfig,
    RunDir,
    RunError,
    RunStatus,
    default_runs_folder,
    find_runs,
    loss_records,
    quality_records,
    steps_text,
)
from tui.commands.common import check_writable, log, wide_console
from tui.format import (
    NONE,
    QUALITY_COLUMNS,
    RunRow,
    format_duration,
    format_loss,
    number,
    quality_cells,
    with_spread,
)

LOSS_POINTS = 5
"""Loss records shown by ``--detail``: the first, the last and evenly between."""
COMPARE_COLUMNS = (
    "run", "state", "step", "final loss", "best FD (step)", "accuracy", "wall time", "images/s", "batch",
)  # fmt: skip
"""A :class:`core.compare.RunSummary` as a row; accuracy is the best-FD evaluation's."""


def runs(
    targets: list[str] | None = typer.Argument(
        None,
        metavar="FOLDER|RUN",
        help="Folder of runs to list (default: $CFG_TUI_RUNS or ./runs); with --compare, the runs to "
        "compare: names in the runs folder (see --runs) or run folders' paths, 2 or more, also "
        "comma-separated.",
        show_default=False,
    ),
    detail: str | None = typer.Option(
        None,
        "--detail",
        metavar="RUN",
        help="Show one run (a name in the folder, or a run folder's path): its settings, its loss at a "
        "few steps and its quality evaluations during training.",
        show_default=False,
    ),
    compare: bool = typer.Option(
        False,
        "--compare",
        help="Compare the runs given as arguments: cfg-tui runs --compare A B C (or A,B,C). A row "
        "each: state, step, final loss (mean of the last 5% of loss records, at least 5), best FD "
        "± one standard error and its step, that evaluation's accuracy, wall time, median images/s, "
        "batch.",
    ),
    runs_folder: Path | None = typer.Option(
        None,
        "--runs",
        metavar="FOLDER",
        help="Where the names of --compare's runs (and of --detail's, without FOLDER) are looked up "
        "(default: $CFG_TUI_RUNS or ./runs).",
        show_default=False,
    ),
    as_json: bool = typer.Option(
        False, "--json", help="With --compare: a JSON list, one object per run (null where unknown)."
    ),
    chart: Path | None = typer.Option(
        None,
        "--chart",
        metavar="PATH.png",
        help="With --compare: also draw the runs' loss (and FD, when evaluated) curves into this PNG.",
        show_default=False,
    ),
    x_axis: str | None = typer.Option(
        None, "--x", metavar="step|time", help="With --chart: x is the step (default) or wall time."
    ),
) -> None:
    """List the runs in a folder: state (a running run whose process is gone is dead), step, loss, age;
    or show one run (--detail), or compare several (--compare)."""
    if compare:
        if detail is not None:
            raise typer.BadParameter("--detail shows one run; --compare compares several: choose one")
        folder = runs_folder or default_runs_folder()
        compare_runs(run_names(targets or []), folder, as_json, chart, x_axis or "step")
        return
    for option, given in (("--json", as_json), ("--chart", chart), ("--x", x_axis)):
        if given:
            raise typer.BadParameter(f"{option} goes with --compare RUN RUN ...")
    if targets and len(targets) > 1:
        raise typer.BadParameter(
            f"give one FOLDER, not {len(targets)} (to compare runs: cfg-tui runs --compare RUN RUN ...)"
        )
    folder = Path(targets[0]) if targets else runs_folder or default_runs_folder()
    if detail is not None:
        wide_console().print(run_detail(find_run(detail, folder)))
        return
    list_runs(folder)


def list_runs(folder: Path) -> None:
    """The table of every run in ``folder``, newest first."""
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
    wide_console().print(table)


def run_names(targets: list[str]) -> list[str]:
    """The run names of the arguments: each one as is, or split at commas (A,B,C)."""
    return [name for target in targets for name in target.split(",") if name]


def compare_runs(names: list[str], folder: Path, as_json: bool, chart: Path | None, x: str) -> None:
    """Every check before any work (one line, exit 2), then the table or JSON, then the chart."""
    if len(names) < 2:
        raise typer.BadParameter(
            f"--compare needs 2 runs or more, not {len(names)}: cfg-tui runs --compare RUN RUN ..."
        )
    try:
        check_axis(x)
    except ValueError as e:
        raise typer.BadParameter(f"--x: {e}") from None
    check_writable("--chart", chart)
    found = [find_run(name, folder) for name in names]
    summaries = [summarize(run) for run in found]
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in summaries], indent=2, allow_nan=False))
    else:
        wide_console().print(compare_table(summaries))
    if chart is not None:
        try:
            write_compare_png(found, chart, x)
        except OSError as e:
            raise RunError(f"--chart {chart}: cannot write it ({e.strerror or e})") from None
        log(f"chart of {len(found)} runs against {x}: {chart}")


def compare_table(summaries: list[RunSummary]) -> Table:
    table = Table(*COMPARE_COLUMNS, title="runs compared (FD ± one standard error; lower is better)",
                  title_justify="left")  # fmt: skip
    for summary in summaries:
        table.add_row(*compare_cells(summary))
    return table


def compare_cells(s: RunSummary) -> tuple[str, ...]:
    """A summary under :data:`COMPARE_COLUMNS`; what a run has not measured reads ``-``."""
    best = with_spread(s.best_frechet, s.best_spread, 2)
    if s.best_step is not None:
        best += f" ({s.best_step})"
    wall = NONE if s.wall_seconds is None else format_duration(s.wall_seconds)
    return (
        s.name, s.state, f"{s.step}/{s.total_steps}", format_loss(s.final_loss), best,
        number(s.best_accuracy, 3), wall, number(s.images_per_sec, 0), str(s.batch_size),
    )  # fmt: skip


def find_run(name: str, folder: Path) -> RunDir:
    """The run ``name`` names: a run folder's path, else a run of that name in ``folder``;
    :class:`RunError` (one line) when neither is a run."""
    path = Path(name)
    if not path.is_dir() and (folder / name).is_dir():
        path = folder / name
    if not path.exists():
        raise RunError(f"no run {name!r}: neither a folder nor a run in {folder}")
    return RunDir.open(path)


def run_detail(run: RunDir) -> Group:
    """The run's settings, its loss at a few steps, and a table of its quality records.

    Every file is read first: one that cannot be used (the reason the run list says ``unreadable``)
    is a one-line :class:`RunError` naming it; damaged lines of metrics.jsonl are only skipped."""
    config, status, records = run.config(), run.status(), run.metrics()
    losses, qualities = loss_records(records), quality_records(records)
    return Group(settings_table(run, config, status), loss_table(losses), quality_table(qualities))


def settings_table(run: RunDir, config: RunConfig, status: RunStatus | None) -> Table:
    """What the run is: preset, network, recipe, data, device, and where it stands."""
    table = Table(show_header=False, box=None, title=f"run {run.path.name}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for name, value in _settings(run, config, status):
        table.add_row(name, value)
    return table


def _settings(run: RunDir, config: RunConfig, status: RunStatus | None) -> list[tuple[str, str]]:
    row = RunRow.of_status(run, status)
    model, train = config.model, config.train
    elapsed = NONE if status is None or status.elapsed is None else format_duration(status.elapsed)
    processes = f" × {config.processes}" if config.processes > 1 else ""
    return [
        ("state", f"{row.state}, step {row.step}, elapsed {elapsed}"),
        ("preset", config.preset),
        ("U-Net", f"channels {','.join(map(str, model.channels))}, {model.num_residual_layers} layer(s) "
                  f"per stage, embeddings {model.t_embed_dim}"),
        ("training", f"{train.steps:,} steps of {train.batch_size}, lr {train.lr:g}, η {train.eta:g}"),
        ("recipe", recipe_text(train)),
        ("data", f"{config.data.dataset}, {config.data.images:,} images"),
        ("device", config.device + processes),
        ("snapshots", snapshots_text(run)),
        ("folder", str(run.path)),
    ]  # fmt: skip


def snapshots_text(run: RunDir) -> str:
    """The steps the run kept weight snapshots at, and where they are, or ``none``."""
    steps = [step for step, _ in run.snapshots()]
    if not steps:
        return "none"
    return f"{steps_text(steps)} (checkpoints/step-NNNNNN.safetensors)"


def recipe_text(train: TrainConfig) -> str:
    """The training recipe's choices in one line: t, the lr's course, Adam, EMA, precision."""
    logit_normal = f"t logit-normal({train.time_mean:g}, {train.time_std:g})"
    times = "t uniform" if train.time_sampling == "uniform" else logit_normal
    course = f"warm-up {train.warmup_steps}, " if train.warmup_steps else ""
    course += "constant lr" if train.lr_decay == "constant" else f"{train.lr_decay} to {train.lr_floor:g}×lr"
    ema = f"EMA {train.ema_decay:g}" if train.ema_decay else "no EMA"
    return f"{times}, {course}, Adam β ({train.beta1:g}, {train.beta2:g}), {ema}, precision {train.precision}"


def loss_points(records: list[dict], count: int = LOSS_POINTS) -> list[dict]:
    """``count`` records spread over the run: the first, the last and evenly between."""
    if len(records) <= count:
        return records
    picks = sorted({round(i * (len(records) - 1) / (count - 1)) for i in range(count)})
    return [records[i] for i in picks]


def loss_table(records: list[dict]) -> Table | Text:
    if not records:
        return Text("no loss records yet")
    table = Table("step", "loss", "lr", "images/s", "elapsed", title="loss", title_justify="left")
    for r in loss_points(records):
        elapsed, ips, lr = r.get("elapsed"), r.get("images_per_sec"), r.get("lr")
        table.add_row(
            str(r.get("step", NONE)), format_loss(r.get("loss")), NONE if lr is None else f"{lr:.3g}",
            NONE if ips is None else f"{ips:.0f}", NONE if elapsed is None else format_duration(elapsed),
        )  # fmt: skip
    return table


def quality_table(records: list[dict]) -> Table | Text:
    if not records:
        return Text("no quality evaluations (cfg-tui train --eval-every N makes them)")
    table = Table(
        *QUALITY_COLUMNS,
        title="quality during training (Fréchet distance ± one standard error; lower is better)",
        title_justify="left",
    )
    for record in records:
        table.add_row(*quality_cells(record))
    return table
