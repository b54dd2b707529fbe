"""The app against hostile input (issue 18): a bad field, path, checkpoint or run file is one
notification naming the problem (or a run listed as unreadable), the app stays up, and the screen
works afterwards. Each case here once took the app down with a traceback."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import threading
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar, Select
from textual.worker import WorkerFailed

import core.configs
import tui.screens.sample as sample_screen
import tui.screens.train as train_screen
from core.assets import CLASSIFIER
from core.checkpoint import FORMAT, VERSION
from core.configs import GiB
from core.files import OutputError
from core.runs import RunDir, RunStatus
from tests.conftest import SMALL, fill, generate, run_config
from tests.test_app_train import open_train, record_notifications
from tui.app import CfgTuiApp
from tui.screens.base import failure_text
from tui.screens.confirm import ConfirmScreen
from tui.screens.export import ExportScreen
from tui.screens.sample import SampleScreen
from tui.settings import AppSettings
from tui.widgets.image_grid import ImageGrid
from tui.widgets.run_list import RunList

Seen = list[tuple[str, str]]


async def settle(pilot: Pilot) -> None:
    """Every worker done, a failed one included (its failure is what these tests look at), and the
    messages it posted handled."""
    with suppress(WorkerFailed):
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def errors(seen: Seen) -> list[str]:
    return [message for message, severity in seen if severity == "error"]


def one_error(seen: Seen, *words: str) -> str:
    """The only error notification: one line, naming each of ``words``."""
    found = errors(seen)
    assert len(found) == 1, seen
    assert "\n" not in found[0] and all(word in found[0] for word in words), found[0]
    return found[0]


def assert_up(app: CfgTuiApp) -> None:
    assert app.is_running and app.return_code is None


def sample_app(checkpoint: Path, runs: Path = Path("runs")) -> CfgTuiApp:
    return CfgTuiApp(AppSettings(runs_folder=runs, checkpoint=checkpoint))


async def request(pilot: Pilot, **fields: str) -> None:
    """Ask the Sample form for a small generation (uniform grid, 2 steps, 1 per class), with ``fields``
    changed, and wait until its worker is done (failed included)."""
    await fill(pilot.app, **{"time-grid": "uniform", "steps": "2", "per-class": "1", **fields})
    await pilot.press("ctrl+g")
    await settle(pilot)


async def still_generates(pilot: Pilot, app: CfgTuiApp, checkpoint: Path) -> None:
    """A small request with good values generates (the screen was not left half-done)."""
    fields = {"seed": "0", "per-class": "1", "steps": "2", "guidance": "3", "checkpoint": str(checkpoint)}
    grid = await generate(pilot, app, **fields)
    assert isinstance(app.screen, SampleScreen) and app.screen.result is not None and grid.panels


# --- the Sample form ----------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"seed": "9" * 30}, ["seed"]),  # beyond int64: torch's generator overflowed in the worker
        ({"seed": str(2**64)}, ["seed"]),
        ({"per-class": "9" * 23}, ["per class"]),  # overflowed torch's repeat
        ({"per-class": "100000000"}, ["per class"]),  # a 4 TB allocation failed in the worker
        ({"steps": "9" * 30}, ["steps"]),
        ({"guidance": "1e308"}, ["guidance"]),
        ({"checkpoint": "~nosuchuser/model.safetensors"}, ["checkpoint", "nosuchuser"]),
        ({"checkpoint": ""}, ["checkpoint"]),
        ({"checkpoint": "x" * 5000}, ["checkpoint"]),  # a name too long for the system (an OSError)
    ],
    ids=[
        *("seed-1e30", "seed-2^64", "per-class-1e23", "per-class-1e8", "steps", "guidance"),
        *("~user", "empty-checkpoint", "long-checkpoint"),
    ],
)
async def test_a_bad_sample_field_is_one_notification(
    small_checkpoint: Path, fields: dict[str, str], words: list[str]
) -> None:
    app = sample_app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)  # the model's preload
        seen = record_notifications(app)
        await request(pilot, **fields)
        assert_up(app)
        one_error(seen, *words)
        assert not app.screen.query_one(ImageGrid).panels
        await still_generates(pilot, app, small_checkpoint)


@pytest.mark.asyncio
async def test_samples_that_would_not_fit_in_memory_are_refused_with_the_estimate(
    small_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the per class range, but 100,000 images at once: refused before anything is allocated,
    as cfg-tui sample refuses it (1 GiB free, made up, so that it is so on any machine)."""
    monkeypatch.setattr(core.configs, "available_memory", lambda device_type="cpu": GiB)
    app = sample_app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        seen = record_notifications(app)
        await request(pilot, **{"per-class": "10000"})
        assert_up(app)
        one_error(seen, "sampling 100,000 images at once needs about", "1.0 GiB free")
        await still_generates(pilot, app, small_checkpoint)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error", "words"),
    [
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8000000000 bytes."),
         ["not enough memory", "7.5 GiB"]),
        (MemoryError(), ["not enough memory"]),
        (KeyError("weights"), ["KeyError", "weights"]),
    ],
    ids=["allocation", "MemoryError", "KeyError"],
)  # fmt: skip
async def test_a_generation_failing_deep_in_torch_is_one_notification(
    small_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, words: list[str]
) -> None:
    """Whatever the worker raises (the estimate can be wrong, torch can fail otherwise): one line, the
    screen put back (no progress bar left), the next generation works."""
    app = sample_app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        seen = record_notifications(app)

        def failing(*args: object, **kwargs: object) -> None:
            raise error

        with monkeypatch.context() as patched:
            patched.setattr(sample_screen, "sample_images", failing)
            await request(pilot)
        assert_up(app)
        one_error(seen, *words)
        assert not app.screen.query_one(ProgressBar).display
        await still_generates(pilot, app, small_checkpoint)


def oversized_checkpoint(path: Path, **change: object) -> Path:
    """A few hundred bytes whose configuration asks for a model of ``change`` (built, it would
    allocate gigabytes)."""
    config = SMALL.to_dict() | change
    metadata = {"format": FORMAT, "version": VERSION, "unet_config": json.dumps(config)}
    save_file({"w": np.zeros(4, np.float32)}, str(path), metadata=metadata)
    return path


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "change",
    [
        {"num_classes": 10**9},
        {"num_classes": 1000},
        {"channels": [4096, 4096, 4096], "num_residual_layers": 20},
    ],
    ids=["classes-1e9", "classes-1000", "channels"],
)
async def test_a_checkpoint_asking_for_an_absurd_model_is_one_notification(
    small_checkpoint: Path, change: dict
) -> None:
    huge = oversized_checkpoint(Path("huge.safetensors"), **change)
    app = sample_app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        seen = record_notifications(app)
        start = time.perf_counter()
        await request(pilot, checkpoint=str(huge))
        assert time.perf_counter() - start < 10  # refused from the header: nothing was built
        assert_up(app)
        one_error(seen, "huge.safetensors")
        await still_generates(pilot, app, small_checkpoint)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["folder", "fifo", "empty-file", "dangling-link"])
async def test_a_checkpoint_that_is_not_a_file_is_one_notification(small_checkpoint: Path, kind: str) -> None:
    """A folder that is not a run, a FIFO (reading it would block for ever), an empty file, a link
    to nothing."""
    path = Path(f"odd-{kind}.safetensors")
    {"folder": path.mkdir, "fifo": lambda: os.mkfifo(path), "empty-file": path.touch,
     "dangling-link": lambda: path.symlink_to("nowhere")}[kind]()  # fmt: skip
    app = sample_app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        seen = record_notifications(app)
        await request(pilot, checkpoint=str(path))
        assert_up(app)
        one_error(seen, path.name)
        await still_generates(pilot, app, small_checkpoint)


@pytest.mark.asyncio
async def test_typing_a_tilde_user_in_the_checkpoint_field_is_not_an_error(small_checkpoint: Path) -> None:
    """Each key re-reads the field (for the checkpoint's classes): ``~n`` on the way to a user's
    home must not end the app (pathlib raises RuntimeError for an unknown user)."""
    app = sample_app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        seen = record_notifications(app)
        field = app.screen.query_one("#checkpoint", Input)
        field.focus()
        field.value = ""
        await pilot.press(*"~nosuchuser/m")
        await pilot.pause()
        assert_up(app)
        assert field.value == "~nosuchuser/m" and errors(seen) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["fifo", "folder"])
async def test_a_settings_file_that_is_not_a_file_is_one_warning(
    small_checkpoint: Path, private_config: Path, kind: str
) -> None:
    """The form remembered between sessions: a FIFO there blocked the app before it showed."""
    os.mkfifo(private_config) if kind == "fifo" else private_config.mkdir()
    app = sample_app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert_up(app)
        said = [(n.message, n.severity) for n in app._notifications if "settings file" in n.message]
        assert said == [
            (f"settings file {private_config} is not a regular file (a {kind.replace('fifo', 'FIFO')});"
             " using the defaults", "warning")
        ]
        seen = record_notifications(app)
        await still_generates(pilot, app, small_checkpoint)  # remembering it fails: a warning, no more
        assert errors(seen) == [] and stat.S_IFMT(os.stat(private_config).st_mode) != stat.S_IFREG


# --- export -------------------------------------------------------------------------------------------


async def export_to(pilot: Pilot, text: str) -> None:
    await pilot.press("ctrl+e")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ExportScreen)
    pilot.app.screen.query_one("#export-path", Input).value = text
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("", ["export", "give a path"]),  # with_suffix on an empty name raised ValueError
        ("~nosuchuser/grid.png", ["export", "nosuchuser"]),  # expanduser raised RuntimeError
        ("fifo.png", ["fifo.png", "FIFO"]),  # replaced by a PNG, or a hang
        ("folder.png", ["folder.png", "folder"]),
        ("missing/grid.png", ["missing", "does not exist"]),
        (".", ["folder"]),
        ("/", ["folder"]),
        ("/dev/null", ["/dev/null", "device"]),  # not written beside as /dev/null.png either
        ("fifo", ["fifo", "FIFO"]),
        ("/proc/x.png", ["/proc/x.png", "not writable"]),  # root may write there, says os.access
        ("x" * 300, ["File name too long"]),  # an OSError from the system, not a ValueError
    ],
    ids=[
        *("empty", "~user", "fifo", "folder", "no-folder", "dot", "root", "device", "fifo-no-suffix"),
        *("proc", "long-name"),
    ],
)
async def test_a_bad_export_path_is_one_notification_and_the_dialog_stays(
    small_checkpoint: Path, tmp_path: Path, target: str, words: list[str]
) -> None:
    os.mkfifo("fifo.png")
    Path("folder.png").mkdir()
    app = sample_app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await generate(pilot, app, steps="2", guidance="3", **{"per-class": "1"})
        seen = record_notifications(app)
        await export_to(pilot, target)
        assert_up(app)
        one_error(seen, *words)
        assert isinstance(app.screen, ExportScreen)  # open still: the path can be corrected
        assert stat.S_ISFIFO(os.stat("fifo.png").st_mode) and not Path("fifo.npz").exists()
        app.screen.query_one("#export-path", Input).value = "good.png"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SampleScreen)
        assert Path("good.png").stat().st_size > 0 and Path("good.npz").stat().st_size > 0
        assert seen[-1] == ("wrote good.png and good.npz", "information")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [OSError(errno.ENOSPC, "No space left on device"), OutputError("export x.png: could not write it")],
    ids=["disk-full", "core-refused"],
)
async def test_an_export_whose_write_fails_is_one_notification(
    small_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """The path passed the dialog's checks, then the write failed (a full disk)."""
    app = sample_app(small_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await generate(pilot, app, steps="2", guidance="3", **{"per-class": "1"})
        seen = record_notifications(app)

        def refused(*args: object) -> Path:
            raise error

        with monkeypatch.context() as patched:
            patched.setattr(sample_screen, "save_png", refused)
            await export_to(pilot, "full.png")
        assert_up(app)
        one_error(seen, "cannot write full.png", str(error.strerror if isinstance(error, OSError) else error))
        assert isinstance(app.screen, SampleScreen) and not Path("full.png").exists()
        await export_to(pilot, "again.png")
        assert Path("again.png").is_file() and seen[-1][1] == "information"


# --- Evaluate -----------------------------------------------------------------------------------------


def evaluate_app(checkpoint: Path, data_root: Path) -> CfgTuiApp:
    return CfgTuiApp(AppSettings(runs_folder=Path("runs"), checkpoint=checkpoint, data_root=data_root))


async def evaluate(pilot: Pilot, **fields: str) -> None:
    await pilot.press("ctrl+n")
    await pilot.pause()
    for name, value in {"guidance": "3", "steps": "2", "per-class": "2", **fields}.items():
        pilot.app.screen.query_one(f"#eval-{name}", Input).value = value
    await pilot.press("ctrl+g")
    await settle(pilot)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"classifier": "~nosuchuser/clf.safetensors"}, ["classifier", "nosuchuser"]),
        ({"checkpoint": "~nosuchuser"}, ["checkpoint", "nosuchuser"]),
        ({"checkpoint": ""}, ["checkpoint"]),
        ({"per-class": "100000000"}, ["per class"]),  # a 4 TB allocation failed in the worker
        ({"per-class": "9" * 23}, ["per class"]),
    ],
    ids=["~user-classifier", "~user-checkpoint", "empty-checkpoint", "per-class-1e8", "per-class-1e23"],
)
async def test_a_bad_evaluate_field_is_one_notification(
    small_checkpoint: Path, data_root: Path, fields: dict[str, str], words: list[str]
) -> None:
    app = evaluate_app(small_checkpoint, data_root)
    async with app.run_test(size=(100, 30)) as pilot:
        seen = record_notifications(app)
        await evaluate(pilot, **fields)
        assert_up(app)
        one_error(seen, *words)
        await evaluate(
            pilot, checkpoint=str(small_checkpoint), classifier=str(CLASSIFIER), **{"per-class": "2"}
        )
        assert_up(app)
        assert app.screen.query_one(DataTable).row_count == 1 and len(errors(seen)) == 1


@pytest.mark.asyncio
async def test_an_evaluation_that_would_not_fit_in_memory_is_refused_with_the_estimate(
    small_checkpoint: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core.configs, "available_memory", lambda device_type="cpu": GiB)
    app = evaluate_app(small_checkpoint, data_root)
    async with app.run_test(size=(100, 30)) as pilot:
        seen = record_notifications(app)
        await evaluate(pilot, **{"per-class": "10000"})
        assert_up(app)
        one_error(seen, "sampling 100,000 images at once needs about", "1.0 GiB free")
        await evaluate(pilot, **{"per-class": "2"})
        assert app.screen.query_one(DataTable).row_count == 1 and len(errors(seen)) == 1


# --- the Train screen and its run list ----------------------------------------------------------------


def run_with_status(path: Path, **change: object) -> RunDir:
    """A run whose status.json is a running one's with ``change`` (a pid of the wrong kind...)."""
    run = RunDir.create(path, run_config())
    status = RunStatus.now("running", 10, 50).to_dict() | change
    run.status_path.write_text(json.dumps(status))
    return run


def damaged_runs(runs: Path) -> dict[str, RunDir]:
    """Runs whose files once took the Train screen down (or could hang it), by what is wrong."""
    found = {
        "pid-string": run_with_status(runs / "pid-string", pid="12"),
        "pid-null": run_with_status(runs / "pid-null", pid=None),
        "pid-huge": run_with_status(runs / "pid-huge", pid=2**70),
        "pid-minus-one": run_with_status(runs / "pid-minus-one", pid=-1),
        "pid-float": run_with_status(runs / "pid-float", pid=1.5),
        "step-string": run_with_status(runs / "step-string", step="10"),
    }
    fifo = found["status-fifo"] = RunDir.create(runs / "status-fifo", run_config())
    os.mkfifo(fifo.status_path)
    folder = found["status-folder"] = RunDir.create(runs / "status-folder", run_config())
    folder.status_path.mkdir()
    binary = found["status-binary"] = RunDir.create(runs / "status-binary", run_config())
    binary.status_path.write_bytes(b"\xff\xfe{not json")
    config_fifo = runs / "config-fifo"
    config_fifo.mkdir()
    os.mkfifo(config_fifo / "config.json")
    found["config-fifo"] = RunDir(config_fifo)
    return found


@pytest.mark.asyncio
async def test_damaged_runs_are_listed_unreadable_and_the_screen_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[RunDir] = []
    monkeypatch.setattr(train_screen, "stop_trainer", stopped.append)
    runs = tmp_path / "runs"
    damaged = damaged_runs(runs)
    good = RunDir.create(runs / "good", run_config())
    app = CfgTuiApp(AppSettings(runs_folder=runs))
    async with app.run_test(size=(100, 30)) as pilot:
        seen = record_notifications(app)
        screen = await open_train(pilot)  # on_mount read every run: int(None) ended the app here
        await pilot.pause(0.5)
        assert_up(app)
        table = screen.query_one(RunList)
        paths = [good.path, *(run.path for run in damaged.values())]
        states = {path.name: table.get_row(str(path))[1] for path in paths}
        assert states.pop("good") == "new"
        assert set(states.values()) == {"unreadable"}, states
        assert screen.followed is None  # none of them is followed as running
        for name, run in damaged.items():  # follow each, and ask to stop and resume it
            table.focus()
            table.select_path(run.path)
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            assert screen.followed is not None and screen.followed.path == run.path, name
            await pilot.press("ctrl+x")
            await pilot.pause()
            assert_up(app)
            assert "not running" in seen[-1][0], (name, seen[-1])
            said = len(seen)
            await pilot.press("ctrl+r")
            await pilot.pause()
            assert_up(app)
            if isinstance(app.screen, ConfirmScreen):  # resumable from its start: a damaged status is no bar
                await pilot.press("n")
                await pilot.pause()
            else:
                assert len(seen) == said + 1 and seen[-1][1] == "warning" and "\n" not in seen[-1][0], name
            assert screen.is_current
        assert errors(seen) == [] and stopped == []  # nothing signalled (pid -1 would be every process)


@pytest.mark.asyncio
async def test_the_sample_screen_reads_damaged_runs_quietly(small_checkpoint: Path, tmp_path: Path) -> None:
    """Its training line reads the same runs every 2 s: nothing is said, nothing ends."""
    runs = tmp_path / "runs"
    damaged_runs(runs)
    app = sample_app(small_checkpoint, runs)
    async with app.run_test(size=(80, 24)) as pilot:
        seen = record_notifications(app)
        await pilot.pause(0.5)
        assert_up(app)
        assert errors(seen) == []
        await still_generates(pilot, app, small_checkpoint)


@pytest.mark.asyncio
async def test_a_run_name_too_long_for_the_system_is_one_notification(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's folder cannot be made (an OSError in the Start worker): one line, nothing launched."""
    launched: list[list[str]] = []
    monkeypatch.setattr(train_screen, "launch_training", lambda args, path: launched.append(args))
    app = CfgTuiApp(AppSettings(runs_folder=tmp_path / "runs", data_root=data_root))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        seen = record_notifications(app)
        screen.query_one("#device", Select).value = "cpu"
        screen.query_one("#batch-size", Input).value = "16"
        screen.query_one("#run-name", Input).value = "x" * 300
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert_up(app)
        one_error(seen, "too long")
        assert launched == [] and screen.followed is None


def churn(runs: Path, stop: threading.Event) -> int:
    """Create and delete run folders (a config, a status, metrics) as fast as possible until
    ``stop``; how many were made."""
    made = 0
    while not stop.is_set():
        path = runs / f"churn-{made % 4}"
        with suppress(OSError, ValueError):
            run = RunDir.create(path, run_config())
            run.write_status(RunStatus.now("running", 1, 50))
            run.append_metrics({"step": 1, "loss": 1.0})
        shutil.rmtree(path, ignore_errors=True)
        made += 1
    return made


@pytest.mark.asyncio
async def test_runs_appearing_and_vanishing_while_the_list_refreshes(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    keeper = RunDir.create(runs / "keeper", run_config())
    app = CfgTuiApp(AppSettings(runs_folder=runs))
    stop = threading.Event()
    made: list[int] = []
    thread = threading.Thread(target=lambda: made.append(churn(runs, stop)))
    async with app.run_test(size=(140, 40)) as pilot:
        seen = record_notifications(app)
        screen = await open_train(pilot)
        table = screen.query_one(RunList)
        thread.start()
        try:
            deadline = time.monotonic() + 3  # past one of the screen's own 2 s refreshes
            while time.monotonic() < deadline:
                screen._refresh_runs()
                churned = [p for p in map(Path, table._paths) if p.name.startswith("churn")]
                if churned and screen.followed is None:
                    screen.follow(RunDir(churned[0]))  # a followed run that vanishes
                await pilot.pause(0.01)
        finally:
            stop.set()
            thread.join()
        assert_up(app)
        assert made and made[0] > 10 and errors(seen) == [], (made, seen)
        screen._refresh_runs()
        await pilot.pause(0.3)
        assert table._paths == [str(keeper.path)]
        screen.follow(keeper)
        await pilot.pause()
        assert screen.followed is not None and screen.followed.path == keeper.path


# --- the one place a worker's failure is said ---------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                "memory: you tried to allocate 4096000000000 bytes. Error code 12\nmore"
            ),
            ["not enough memory", "3,814.7 GiB"],
        ),
        (MemoryError(), ["not enough memory"]),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nsee the docs"), ["not enough memory"]),
        (OverflowError("Python int too large to convert to C long"), ["too large", "C long"]),
        (RuntimeError("Overflow when unpacking long long"), ["too large"]),
        (KeyError("x"), ["KeyError", "'x'"]),
        (ValueError("steps must be at least 1\nsecond line"), ["steps must be at least 1"]),
        (RuntimeError("x" * 1000), ["RuntimeError"]),
    ],
    ids=[
        *("cpu-alloc", "MemoryError", "cuda-oom", "OverflowError", "torch-overflow", "KeyError"),
        *("ValueError", "long"),
    ],
)
def test_a_failed_worker_is_said_in_one_short_line(error: BaseException, words: list[str]) -> None:
    text = failure_text(error)
    assert "\n" not in text and len(text) <= 200 and all(word in text for word in words), text
