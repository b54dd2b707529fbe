"""The Train screen: start a detached run from the form, follow it live, stop it, list, resume, reattach."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.style import Style
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Input, Label, Select, Static

import tui.screens.train as train_screen
from core.checkpoint import save_checkpoint
from core.lifecycle import ask_to_stop
from core.presets import PRESETS
from core.runs import RunDir, RunStatus, pid_alive
from core.settings import preset_name, resolve_device
from core.trainer import new_model
from tests.conftest import SMALL, TINY_TRAIN, cli, run_config
from tests.layout import assert_no_overlaps, focus_problems
from tests.test_app_snapshots import _finished_run
from tui.app import CfgTuiApp
from tui.defaults import LR_LABEL, TRAIN_PRESET
from tui.screens.confirm import ConfirmScreen
from tui.screens.train import VIEWS, TrainScreen, resume_question, weights_text
from tui.settings import AppSettings
from tui.widgets.compare_chart import CompareChart
from tui.widgets.loss_chart import LossChart, fitting
from tui.widgets.machine_panel import MachinePanel
from tui.widgets.preview_pane import PreviewPane
from tui.widgets.quality_chart import TITLES, QualityChart, QualityPoint, summaries
from tui.widgets.run_list import COLUMNS, RunList, columns_that_fit
from tui.widgets.run_stats import run_stats

LONG_RUN = "100000"
"""Steps for runs that the tests stop themselves: they never finish on their own first."""


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen]]:
    """Every trainer the screen launches; any still running at the end of the test is killed."""
    processes: list[subprocess.Popen] = []
    real = train_screen.launch_training

    def recording(args: list[str], run_dir: Path) -> subprocess.Popen:
        processes.append(real(args, run_dir))
        return processes[-1]

    monkeypatch.setattr(train_screen, "launch_training", recording)
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def record_notifications(app: CfgTuiApp) -> list[tuple[str, str]]:
    """(message, severity) of every notification, in order."""
    seen: list[tuple[str, str]] = []
    real = app.notify

    def notify(message: str, *args: object, severity: str = "information", **kwargs: object) -> None:
        seen.append((message, severity))
        real(message, *args, severity=severity, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return seen


async def open_train(pilot: Pilot) -> TrainScreen:
    await pilot.press("ctrl+t")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, TrainScreen)
    return screen


async def confirm(pilot: Pilot, answer: str = "y") -> str:
    """The question the confirmation dialog asks (it must be up), answered with ``answer``."""
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ConfirmScreen), f"no confirmation dialog but {screen}"
    question = str(screen.query_one("#confirm-question", Label).render())
    await pilot.press(answer)
    await pilot.pause()
    return question


async def wait_for(pilot: Pilot, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.2)


def stats_text(screen: TrainScreen) -> str:
    return str(screen.query_one("#train-stats", Static).content)


def fill_tiny_form(screen: TrainScreen) -> None:
    """The cpu preset with a batch that fits the 64 made-up images, and steps enough to be stopped."""
    screen.query_one("#batch-size", Input).value = "16"
    screen.query_one("#device", Select).value = "cpu"


async def start_long_run(pilot: Pilot, screen: TrainScreen, runs: Path) -> RunDir:
    fill_tiny_form(screen)
    screen.query_one("#steps", Input).focus()
    await pilot.press(*LONG_RUN)
    await pilot.press("ctrl+g")
    await pilot.app.workers.wait_for_complete()  # the run is created in a worker (it reads the data)
    await pilot.pause()
    (path,) = runs.iterdir()
    return RunDir(path)


def state_of(run: RunDir) -> str:
    status = run.status()
    return status.state if status else "new"


@pytest.mark.asyncio
@pytest.mark.parametrize(("processes", "precision"), [(1, "fp32"), (2, "bf16")])
async def test_start_follow_and_stop_a_tiny_run(
    tmp_path: Path, data_root: Path, cli_env: dict, launched: list, processes: int, precision: str
) -> None:
    runs = tmp_path / "runs"
    app = CfgTuiApp(AppSettings(runs_folder=runs, data_root=data_root))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        screen.query_one("#nproc", Input).value = str(processes)
        screen.query_one("#precision", Select).value = precision
        screen.query_one("#preview-every", Input).value = "10"
        run = await start_long_run(pilot, screen, runs)
        assert screen.followed is not None and screen.followed.path == run.path
        # Until the trainer writes its status, the banner says it is starting, and which process.
        assert f"starting Python and torch (pid {launched[0].pid}" in stats_text(screen)
        chart, preview = screen.query_one(LossChart), screen.query_one(PreviewPane)
        await wait_for(pilot, lambda: len(chart.points) >= 2, "two loss values in the chart")
        assert "running" in stats_text(screen) and "starting" not in stats_text(screen)
        await wait_for(pilot, lambda: preview.steps[0] is not None, "the first preview in the pane")
        assert preview.steps[0] % 10 == 0 and (run.previews / f"step-{preview.steps[0]:06d}.png").is_file()
        machine = screen.query_one(MachinePanel)
        assert machine.followed_pid == launched[0].pid  # the trainer (torchrun's ranks are its children)
        config = run.config()
        assert config.train.batch_size == 16 and config.train.steps == int(LONG_RUN)
        assert config.data.root == str(data_root) and config.preset == "cpu"
        assert config.processes == processes and run.status().device.startswith("cpu")
        assert config.train.precision == precision
        assert ("× 2" in run.status().device) == (processes == 2)
        await pilot.press("ctrl+x")
        assert (await confirm(pilot, "n")).startswith(f"Stop {run.path.name} at step ")
        await pilot.pause(1)
        assert state_of(run) == "running"  # "n" cancels
        await pilot.press("ctrl+x")
        assert (await confirm(pilot)).startswith(f"Stop {run.path.name} at step ")
        await wait_for(pilot, lambda: state_of(run) == "stopped", "status.json to say stopped", timeout=60)
        await wait_for(pilot, lambda: "stopped" in stats_text(screen), "the screen to say stopped", 10)
        assert run.model_path.is_file()  # a graceful stop checkpoints first
    assert launched[0].wait(timeout=30) == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "text", "named"),
    [
        ("steps", "abc", "steps"),
        ("steps", "-1", "steps"),
        ("batch-size", "0", "batch size"),
        ("lr", "abc", LR_LABEL),
        ("lr", "nan", LR_LABEL),  # numbers, refused by the core's check of the settings
        ("lr", "0", LR_LABEL),
        ("eta", "2", "eta"),
        ("run-name", "a/b", "run name"),
        ("nproc", "0", "nproc"),
        ("nproc", "two", "nproc"),
    ],
)
async def test_bad_field_is_one_error_line_and_launches_nothing(
    tmp_path: Path, launched: list, field: str, text: str, named: str
) -> None:
    runs = tmp_path / "runs"
    app = CfgTuiApp(AppSettings(runs_folder=runs))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        seen = record_notifications(app)
        screen.query_one(f"#{field}", Input).value = text
        await pilot.press("ctrl+g")
        await pilot.pause()
        errors = [message for message, severity in seen if severity == "error"]
        assert len(errors) == 1 and errors[0].startswith(named) and "\n" not in errors[0], seen
        label = screen.query_one(f"#{field}").parent.query_one(".field-label", Label)  # type: ignore[union-attr]
        assert str(label.content) == named  # the form's word for the field is the error's
    assert launched == [] and not (runs.exists() and any(runs.iterdir()))


@pytest.mark.asyncio
async def test_a_trainer_that_exits_early_says_why(
    tmp_path: Path, data_root: Path, cli_env: dict, launched: list
) -> None:
    """The cpu preset's batch of 128 exceeds the 64 made-up images: the trainer's own message shows."""
    runs = tmp_path / "runs"
    app = CfgTuiApp(AppSettings(runs_folder=runs, data_root=data_root))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        seen = record_notifications(app)
        screen.query_one("#device", Select).value = "cpu"
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: any(severity == "error" for _, severity in seen), "an error")
        (error,) = [message for message, severity in seen if severity == "error"]
        assert "exceeds the 64 training images" in error and "\n" not in error
        assert not (screen.followed is not None and screen.followed.config_path.exists())


def make_dead_run(path: Path) -> RunDir:
    """A run whose status says running, though its process is gone (killed without a word)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = RunDir.create(path, run_config(steps=50, batch_size=16))
    run.write_status(dataclasses.replace(RunStatus.now("running", 10, 50), pid=gone.pid))
    return run


@pytest.mark.asyncio
async def test_run_list_shows_states_and_acts_on_the_selected_run(
    tmp_path: Path, data_root: Path, cli_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    done = runs / "done"
    result = cli("train", *TINY_TRAIN, "--steps", "3", "--run-dir", str(done), env=cli_env)
    assert result.returncode == 0, result.stderr
    ghost = make_dead_run(runs / "ghost")
    launches: list[list[str]] = []

    class Exited:
        """Stands in for a trainer that ran and exited cleanly."""

        pid = -1

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(train_screen, "launch_training", lambda args, path: launches.append(args) or Exited())
    app = CfgTuiApp(AppSettings(runs_folder=runs, data_root=data_root))
    opened: list[Path] = []
    app.open_in_sample = opened.append  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        titles = {command.title for command in app.get_system_commands(screen)}
        assert {"Start training", "Stop training", "Resume run", "Open run in Sample"} <= titles
        screen.query_one("#preset", Select).value = "seed"
        await pilot.pause()
        assert screen.query_one("#steps", Input).placeholder == "5000"  # an empty field means the preset's
        table = screen.query_one(RunList)
        rows = {key: table.get_row(key) for key in (str(done), str(ghost.path))}
        assert rows[str(done)][1:3] == ["finished", "3/3"] and rows[str(ghost.path)][1:3] == ["dead", "10/50"]
        seen = record_notifications(app)

        table.focus()
        table.select_path(done)
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert screen.followed is not None and screen.followed.path == done
        assert "finished" in stats_text(screen) and len(screen.query_one(LossChart).points) == 1
        await pilot.press("ctrl+r")
        assert launches == [] and "finished" in seen[-1][0]
        await pilot.press("ctrl+o")
        assert opened == [RunDir(done).model_path]

        assert table.selected_path() == done  # the cursor on the followed run
        await pilot.press("up")  # the user moves it to the ghost (newer, listed above): actions go there
        assert table.selected_path() == ghost.path
        await pilot.press("ctrl+o")
        assert opened == [RunDir(done).model_path] and "no checkpoint" in seen[-1][0]
        await pilot.press("ctrl+r")
        assert await confirm(pilot) == f"Resume {ghost.path.name} from the start (no checkpoint yet)?"
        assert launches == [["--resume", str(ghost.path), "--data-root", str(data_root)]]
        assert screen.followed is not None and screen.followed.path == ghost.path


@pytest.mark.asyncio
async def test_reopened_app_follows_the_run_that_kept_running(
    tmp_path: Path, data_root: Path, cli_env: dict, launched: list
) -> None:
    runs = tmp_path / "runs"
    async with CfgTuiApp(AppSettings(runs_folder=runs, data_root=data_root)).run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        run = await start_long_run(pilot, screen, runs)
        await wait_for(pilot, lambda: state_of(run) == "running", "the run to start")
    pid = run.status().pid
    assert pid_alive(pid) and run.liveness() == "running"  # the app is gone, the training is not

    async with CfgTuiApp(AppSettings(runs_folder=runs, data_root=data_root)).run_test(
        size=(160, 48)
    ) as pilot:
        screen = await open_train(pilot)
        assert screen.followed is not None and screen.followed.path == run.path
        chart = screen.query_one(LossChart)
        await wait_for(pilot, lambda: len(chart.points) >= 1, "the chart to fill again")
        assert "running" in stats_text(screen)
    assert ask_to_stop(run)
    assert launched[0].wait(timeout=60) == 0 and run.liveness() == "stopped"


@pytest.mark.parametrize(("width", "height"), [(0, 0), (1, 1), (8, 2), (11, 2), (12, 3), (50, 10), (131, 30)])
@pytest.mark.parametrize("count", [0, 1, 2, 300])
def test_loss_chart_fits_any_size(width: int, height: int, count: int) -> None:
    chart = LossChart()
    chart.add({"step": 10 * i, "loss": 1.0 / i + 0.01 * (i % 3)} for i in range(1, count + 1))
    chart._style = lambda name: Style()  # type: ignore[method-assign]
    lines = chart.render_text(width, height).plain.split("\n")
    assert len(lines) <= max(height, 1) and all(len(line) <= width for line in lines)
    if count >= 2 and width >= 11 and height >= 2:
        assert len(lines) == height
        assert any(0x2800 < ord(ch) <= 0x28FF for ch in "".join(lines))


@pytest.mark.asyncio
async def test_the_preset_is_auto_as_for_cfg_tui_train(tmp_path: Path) -> None:
    """The form starts on ``auto`` and resolves it as ``cfg-tui train`` does (core.settings): the
    placeholders and the description are the preset it would train here, on the chosen device."""
    app = CfgTuiApp(AppSettings(runs_folder=tmp_path / "runs"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        preset = screen.query_one("#preset", Select)
        assert preset.value == TRAIN_PRESET == "auto"
        assert [value for _, value in preset._options] == ["auto", *PRESETS]
        here = preset_name("auto", resolve_device("auto"))
        assert screen.chosen_preset() == here and screen.form_settings().preset == "auto"
        assert screen.query_one("#steps", Input).placeholder == str(PRESETS[here].train.steps)
        assert str(screen.query_one("#preset-help", Static).content).startswith(f"auto → {here} here: ")
        screen.query_one("#device", Select).value = "cpu"  # auto on the CPU is the cpu preset
        await pilot.pause()
        assert screen.chosen_preset() == "cpu"
        assert screen.query_one("#run-name", Input).placeholder == "time-cpu"
        preset.value = "seed"
        await pilot.pause()
        assert screen.chosen_preset() == "seed"
        assert str(screen.query_one("#preset-help", Static).content) == PRESETS["seed"].description


@pytest.mark.asyncio
async def test_the_screen_holds_at_60x20_and_shows_focus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The smallest size the app is laid out for, following a finished run: no widget over another
    or cut, labels clear of their values, every focusable widget visibly focused."""
    monkeypatch.chdir(tmp_path)
    save_checkpoint(tmp_path / "small.safetensors", new_model(SMALL, seed=0).eval())
    _finished_run(Path("runs"))
    app = CfgTuiApp(AppSettings(runs_folder=Path("runs"), checkpoint=Path("small.safetensors")))
    async with app.run_test(size=(60, 20)) as pilot:
        screen = await open_train(pilot)
        screen.query_one(RunList).focus()
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert_no_overlaps(screen)
        assert await focus_problems(pilot, screen) == []
        assert "finished" in stats_text(screen)
        quality = screen.query_one(QualityChart)
        plain = [Content.from_markup(str(label)).plain for label in (quality.border_title, TITLES[1])]
        assert plain[0] == plain[1] == "FD (log) · accuracy"  # the longest title that fits
        assert str(quality.border_subtitle) == "FD 268.3, accuracy 0.980"


@pytest.mark.parametrize("width", [20, 30, 33, 40, 50, 80])
def test_the_stats_wrap_between_items(tmp_path: Path, width: int) -> None:
    run = RunDir.create(tmp_path / "a-rather-long-run-name", run_config())
    reason = "batch size 128 exceeds the 64 training images"
    status = dataclasses.replace(RunStatus.now("failed", 10, 50), reason=reason)
    last = {"images_per_sec": 450.0, "memory_mb": 812.0, "elapsed": 3.0}
    stats = run_stats(run, "failed", status, last, 16)
    lines = [line.plain for line in stats.wrapped(width)]
    assert all(len(line) <= width for line in lines)
    items = [item.plain for group in stats.lines for item in group]
    for item in items:
        if len(item) <= width:  # whole on one line
            assert any(item in line for line in lines), (item, lines)
    assert len(lines) == 3 if width >= 80 else len(lines) > 3


def test_a_dead_run_says_its_process_is_gone_and_where_it_will_resume(tmp_path: Path) -> None:
    run = make_dead_run(tmp_path / "b")
    run.write_status(dataclasses.replace(run.status(), checkpoint_step=5))
    first = " ".join(item.plain for item in run_stats(run, "dead", run.status(), {}, 16).lines[0])
    assert first == "b dead process gone (killed or crashed), last checkpoint at step 5; ctrl+r resumes"


@pytest.mark.parametrize("room", range(0, 60, 3))
def test_chart_labels_shorten_whole_rather_than_cut(room: int) -> None:
    """The quality chart's title and summary: the longest form that fits its border, never one cut
    by an ellipsis ("· fr"); the shortest where none fits."""
    point = QualityPoint(step=500, frechet=268.31, spread=2.0, accuracy=0.98)
    for choices in (TITLES, summaries(point)):
        chosen = fitting(choices, room)
        fits = [c for c in choices if Content.from_markup(c).cell_length <= room]
        assert chosen == (fits[0] if fits else choices[-1])
    assert summaries(point)[0] == "step 500: FD 268.3±2.0, accuracy 0.980"


@pytest.mark.parametrize(("room", "shown"), [(0, 2), (20, 2), (29, 3), (36, 3), (37, 4), (80, 4)])
def test_the_run_list_shows_the_columns_that_fit_whole(room: int, shown: int) -> None:
    """A narrow list drops its last columns rather than cutting a loss to "0.2"."""
    rows = [("demo-run", "finished", "500/500", "0.2000"), ("b", "running", "10/500", "1.0000")]
    assert columns_that_fit(rows, room, padding=1) == shown
    assert columns_that_fit([], 24, padding=1) == len(COLUMNS)  # the headers alone, 3-5 wide


class ExitedTrainer:
    """Stands in for a launched trainer that has already exited."""

    pid = -1

    def poll(self) -> int:
        return 0


@pytest.mark.asyncio
async def test_resume_acts_on_the_run_in_the_banner_after_a_new_run_was_started(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17's sequence: follow run A, start run B from the form (listed above A), B's trainer is
    killed: ctrl+r resumes B, the run in the banner. (The list's cursor stayed on A's row, and ctrl+r
    acted on the cursor: it resumed A.)"""
    runs = tmp_path / "runs"
    a = make_dead_run(runs / "a")
    launches: list[list[str]] = []
    monkeypatch.setattr(
        train_screen, "launch_training", lambda args, path: launches.append(args) or ExitedTrainer()
    )
    app = CfgTuiApp(AppSettings(runs_folder=runs, data_root=data_root))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        table = screen.query_one(RunList)
        table.focus()
        await pilot.press("enter")  # follow A, the only run
        await pilot.pause()
        assert screen.followed is not None and screen.followed.path == a.path
        screen.query_one("#run-name", Input).value = "b"
        screen.query_one("#batch-size", Input).value = "16"  # the test data hold 64 images
        seen = record_notifications(app)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: len(launches) == 1, f"B's trainer to be launched {seen}", timeout=20)
        b = screen.followed.path
        assert b.name == "b" and launches[0][:2] == ["--resume", str(b)]
        await pilot.pause()
        assert table.selected_path() == b  # the new run is selected, as it is followed
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        RunDir(b).write_status(dataclasses.replace(RunStatus.now("running", 10, 50), pid=gone.pid))
        await pilot.press("ctrl+r")
        assert (await confirm(pilot)).startswith("Resume b from ")
        assert launches[1][:2] == ["--resume", str(b)]


def _two_finished_runs(runs: Path) -> tuple[Path, Path]:
    """demo-run and other-run (the same, its loss a third lower), both with a preview."""
    _finished_run(runs)
    other = runs / "other-run"
    shutil.copytree(runs / "demo-run", other)
    records = RunDir(other).metrics()
    lines = [json.dumps(r | ({"loss": r["loss"] * 2 / 3} if "loss" in r else {})) for r in records]
    (other / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return runs / "demo-run", other


@pytest.mark.asyncio
async def test_marking_two_runs_overlays_their_curves_and_shows_their_previews(tmp_path: Path) -> None:
    demo, other = _two_finished_runs(tmp_path / "runs")
    app = CfgTuiApp(AppSettings(runs_folder=tmp_path / "runs"))
    async with app.run_test(size=(200, 60)) as pilot:
        screen = await open_train(pilot)
        table, chart = screen.query_one(RunList), screen.query_one(CompareChart)
        assert not chart.display and screen.query_one(LossChart).display
        table.focus()
        await pilot.press("space")  # the first run: one is not a comparison yet
        assert len(screen.compared) == 1 and not chart.display
        await pilot.press("down", "space")
        await pilot.pause()
        assert set(screen.compared) == {demo, other} and chart.display
        assert not screen.query_one(LossChart).display and not screen.query_one(QualityChart).display
        series = chart.series()
        assert len(series) == 2 and all(len(points) == 50 for points in series)
        assert [y for _, y in series[0]] != [y for _, y in series[1]]
        plain = chart.render_text(*chart.content_size).plain
        assert "demo-run" in plain and "other-run" in plain  # the legend names both
        preview = screen.query_one(PreviewPane)
        assert set(preview.runs) == {demo, other} and preview.steps == [500, 500]
        await pilot.press("t")
        assert chart.x_axis == "time" and "time" in chart.render_text(*chart.content_size).plain
        await pilot.press("space")  # unmark one: back to the followed run's charts
        await pilot.pause()
        assert len(screen.compared) == 1 and not chart.display and screen.query_one(LossChart).display


@pytest.mark.asyncio
async def test_on_a_small_screen_v_shows_one_view_after_another(tmp_path: Path) -> None:
    _finished_run(tmp_path / "runs")
    app = CfgTuiApp(AppSettings(runs_folder=tmp_path / "runs"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        screen.query_one(RunList).focus()
        await pilot.press("enter")
        await pilot.pause()
        shown = []
        for _ in range(4):
            views = {name: screen.query_one(f"#{id}").display for name, id in VIEWS.items()}
            assert sum(views.values()) == 1, views  # one view at a time
            shown.append(next(name for name, on in views.items() if on))
            await pilot.press("v")
            await pilot.pause()
        assert shown == ["charts", "preview", "machine", "charts"]
        assert "v: next view" in str(screen.query_one(LossChart).border_title)
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        assert all(screen.query_one(f"#{id}").display for id in VIEWS.values())  # roomy: all at once
        assert "v: next" not in str(screen.query_one(LossChart).border_title)


def test_a_starting_run_says_what_it_does_instead_of_its_speed(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", run_config(steps=50, batch_size=16))
    status = RunStatus.now("running", 0, 50, phase="loading data")
    text = str(run_stats(run, "running", status, {}, 16))
    assert "step 0/50 (0%)  loading data…" in text and "img/s" not in text and "ETA" not in text
    launched = str(run_stats(run, "new", None, {}, 16, starting="starting Python and torch (pid 7, 3 s)"))
    assert launched.startswith("run  starting\n") and "starting Python and torch (pid 7, 3 s)…" in launched
    trained = str(run_stats(run, "running", RunStatus.now("running", 20, 50), {"images_per_sec": 80.0}, 16))
    assert "80 img/s" in trained and "ETA" in trained


def test_the_questions_name_the_run_and_where_it_resumes_from(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "b", run_config(steps=50, batch_size=16))
    status = dataclasses.replace(RunStatus.now("stopped", 30, 50), checkpoint_step=30)
    assert resume_question(run, status) == "Resume b from its checkpoint at step 30 (of 50)?"
    assert resume_question(run, None) == "Resume b from the start (no checkpoint yet)?"
    save_checkpoint(run.model_path, new_model(SMALL, 0), {"step": "30"})
    running = RunStatus.now("running", 47, 50)
    assert weights_text(run, running, "running") == (
        "b: the weights of step 30; it is at step 47/50: each Generate loads its newest weights"
    )
    assert weights_text(run, status, "stopped") == "b: the weights of step 30"
