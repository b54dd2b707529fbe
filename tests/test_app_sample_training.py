"""The Sample screen's training line: which run trains, its step and ETA, and f6 that follows it on
the Train screen; hidden while none trains, and one bad run folder does not hide the others."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

import tui.widgets.training_indicator as indicator_module
from core.runs import RunDir, RunStatus
from tests.conftest import run_config
from tests.layout import assert_no_overlaps
from tui.app import CfgTuiApp
from tui.screens.sample import SampleScreen
from tui.screens.train import TrainScreen
from tui.settings import AppSettings
from tui.widgets.image_grid import ImageGrid
from tui.widgets.training_indicator import Training, TrainingIndicator, eta_seconds, line_forms, read_training

NAME = "20261130-cpu"


def make_run(folder: Path, name: str, status: RunStatus | None, age: float = 0.0) -> RunDir:
    """A made-up run; ``age`` seconds older than the others (find_runs lists the newest first)."""
    run = RunDir.create(folder / name, run_config(steps=400))
    if status is not None:
        run.write_status(status)
    stamp = time.time() - age
    os.utime(run.config_path, (stamp, stamp))
    return run


def training(step: int = 160, elapsed: float | None = 80.0) -> RunStatus:
    """Running in this process (so its pid is alive while the test runs): 0.5 s a step so far."""
    return RunStatus.now("running", step, 400, elapsed=elapsed)


def garbage(folder: Path, name: str, text: str = "{ not json") -> RunDir:
    """A run whose status.json cannot be read, newer than the others."""
    run = make_run(folder, name, None)
    run.status_path.write_text(text)
    return run


def gone_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _app(runs: Path, checkpoint: Path) -> CfgTuiApp:
    return CfgTuiApp(AppSettings(runs_folder=runs, checkpoint=checkpoint))


async def wait_for(pilot: Pilot, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def sample_screen(pilot: Pilot) -> SampleScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SampleScreen), "the Sample screen")
    return pilot.app.screen  # type: ignore[return-value]


def plain(parts: list) -> str:
    """A form of the line as text (its parts are text, or text and a style)."""
    return "".join(part if isinstance(part, str) else part[0] for part in parts)


def shown(indicator: TrainingIndicator) -> str:
    return str(indicator.render())


def notified(app: CfgTuiApp, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


# --- reading the runs and the line ------------------------------------------------------------


def test_eta_is_the_steps_left_at_the_average_pace_so_far() -> None:
    assert eta_seconds(training(160, elapsed=80.0)) == pytest.approx(120.0)  # 240 steps at 0.5 s
    assert eta_seconds(training(0, elapsed=5.0)) is None  # no step timed yet
    assert eta_seconds(training(160, elapsed=None)) is None
    assert eta_seconds(training(400, elapsed=200.0)) is None


def test_the_line_shortens_to_fit_and_always_names_the_key() -> None:
    forms = [plain(form) for form in line_forms(Training(Path(NAME), 160, 400, 130.0, 1))]
    assert forms[0] == f"training {NAME} (+1 more) · step 160/400 (40%) · ETA 2m10s · f6 follows"
    assert forms[-1] == f"f6: {NAME} (+1 more) 160/400 ETA 2m10s"
    assert all("f6" in form for form in forms)
    assert [len(form) for form in forms] == sorted((len(form) for form in forms), reverse=True)
    assert "ETA —" in plain(line_forms(Training(Path(NAME), 0, 400, None, 0))[0])


def test_reading_skips_finished_dead_and_unreadable_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert read_training(runs) is None  # no folder yet
    make_run(runs, "old-running", training(100), age=300)
    make_run(runs, NAME, training(), age=200)
    make_run(runs, "finished", RunStatus.now("finished", 400, 400, elapsed=200.0), age=100)
    make_run(runs, "dead", dataclasses.replace(training(), pid=gone_pid()), age=50)
    make_run(runs, "new", None, age=25)
    garbage(runs, "garbage")
    # Python's json reads Infinity; int() of it overflows (not a RunError).
    garbage(runs, "infinite", '{"state": "running", "step": Infinity, "total_steps": 400}')
    found = read_training(runs)
    assert found is not None and found.path == runs / NAME
    assert (found.step, found.total, found.others) == (160, 400, 1)
    assert found.eta == pytest.approx(120.0)


# --- on the Sample screen ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_training_run_shows_its_line_and_f6_follows_it(
    small_checkpoint: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    run = make_run(runs, NAME, training(), age=60)
    make_run(runs, "done", RunStatus.now("finished", 400, 400, elapsed=200.0), age=120)
    garbage(runs, "broken")  # the newest: its status cannot be read
    app = _app(runs, small_checkpoint)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await sample_screen(pilot)
        indicator = screen.query_one(TrainingIndicator)
        await wait_for(pilot, lambda: indicator.display and indicator.running is not None, "the line")
        await pilot.pause()
        assert indicator.running == run.path
        line = f"training {NAME} · step 160/400 (40%) · ETA 2m00s · f6 follows"
        assert indicator.line == line and shown(indicator) == line  # room for all of it
        assert indicator.region.y == screen.query_one(ImageGrid).region.y - 1  # just above the grid
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen), "the Train screen")
        train = app.screen
        assert isinstance(train, TrainScreen)
        await wait_for(pilot, lambda: train.followed is not None, "the run to be followed")
        assert train.followed is not None and train.followed.path == run.path


@pytest.mark.asyncio
async def test_at_80_columns_the_line_is_shorter_and_overlaps_nothing(
    small_checkpoint: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    make_run(runs, NAME, training(), age=60)
    make_run(runs, "other", training(10), age=120)
    app = _app(runs, small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await sample_screen(pilot)
        indicator = screen.query_one(TrainingIndicator)
        await wait_for(pilot, lambda: indicator.display and indicator.running is not None, "the line")
        await pilot.pause()
        text = shown(indicator)
        assert "step 160/400" in indicator.line and "(+1 more)" in indicator.line
        assert NAME in text and "f6" in text and "160/400" in text and "ETA 2m00s" in text
        assert len(text) <= indicator.size.width
        assert_no_overlaps(screen)


@pytest.mark.asyncio
async def test_follow_run_follows_the_run_given_even_if_another_is_newer(
    small_checkpoint: Path, tmp_path: Path
) -> None:
    """The Train screen made by the switch follows the newest running run on mounting; the run
    asked for replaces it once it is mounted."""
    runs = tmp_path / "runs"
    make_run(runs, "newest", training(), age=10)
    older = make_run(runs, "older", training(20), age=100)
    app = _app(runs, small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await sample_screen(pilot)
        app.follow_run(older.path)
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen), "the Train screen")
        train = app.screen
        assert isinstance(train, TrainScreen)
        await wait_for(
            pilot, lambda: train.followed is not None and train.followed.path == older.path, "older"
        )
        await pilot.pause(0.2)
        assert train.followed is not None and train.followed.path == older.path


@pytest.mark.asyncio
async def test_without_a_training_run_there_is_no_line_and_f6_says_so(
    small_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    make_run(runs, "done", RunStatus.now("finished", 400, 400, elapsed=200.0))
    garbage(runs, "broken")
    reads: list[Path] = []
    real = indicator_module.read_training
    monkeypatch.setattr(
        indicator_module, "read_training", lambda folder: reads.append(folder) or real(folder)
    )
    app = _app(runs, small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await sample_screen(pilot)
        indicator = screen.query_one(TrainingIndicator)
        await wait_for(pilot, lambda: bool(reads), "the runs to be read")
        await pilot.pause(0.1)
        assert not indicator.display and indicator.running is None and indicator.region.height == 0
        await pilot.press("f6")
        await pilot.pause()
        assert isinstance(app.screen, SampleScreen) and notified(app, "no run is training")


@pytest.mark.asyncio
async def test_the_line_goes_when_the_run_ends(small_checkpoint: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = make_run(runs, NAME, training())
    app = _app(runs, small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await sample_screen(pilot)
        indicator = screen.query_one(TrainingIndicator)
        await wait_for(pilot, lambda: indicator.running == run.path, "the line")
        run.write_status(RunStatus.now("finished", 400, 400, elapsed=200.0))
        await wait_for(pilot, lambda: not indicator.display, "the line to go", timeout=10)
        assert indicator.running is None
        status = str(screen.query_one("#sample-status", Static).render())
        assert "training" not in status


@pytest.mark.asyncio
async def test_the_runs_are_read_only_while_the_sample_screen_is_shown(
    small_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Path] = []
    real = indicator_module.read_training
    monkeypatch.setattr(
        indicator_module, "read_training", lambda folder: reads.append(folder) or real(folder)
    )
    app = _app(tmp_path / "runs", small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        indicator = (await sample_screen(pilot)).query_one(TrainingIndicator)
        await wait_for(pilot, lambda: bool(reads), "the runs to be read")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen), "the Train screen")
        await pilot.pause(0.2)
        reads.clear()
        indicator.check()  # as its timer does
        await pilot.pause(0.2)
        assert reads == []
        await pilot.press("ctrl+s")  # back: read at once, not at the next tick
        await wait_for(pilot, lambda: bool(reads), "the runs to be read again", timeout=1.5)
