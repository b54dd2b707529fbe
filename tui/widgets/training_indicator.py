"""One line saying that a run is training (its name, step and ETA) and the key that follows it.

It reads the runs folder every few seconds in a thread worker, only while its screen is shown,
and is hidden (taking no room) while no run trains. The line is shortened to the width it has:
the full ``training NAME · step 160/400 (40%) · ETA 2m10s · f6 follows`` where there is room,
down to ``f6: NAME 160/400 ETA 2m10s`` in a narrow column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import events, on, work
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from core.runs import RunDir, RunStatus, find_runs
from tui.format import format_duration
from tui.screens.base import failure_text
from tui.widgets.run_list import RUN_FILE_ERRORS

FOLLOW_KEY = "f6"
"""The Sample screen's key that follows the run named here (the line names it)."""
UNREADABLE = RUN_FILE_ERRORS
"""What reading one run folder may raise (RunError is a ValueError; a status with ``Infinity`` in
it overflows): that run is skipped, the others are still read."""

Part = str | tuple[str, str]
"""A piece of the line: text, or text and its style."""


@dataclass(frozen=True)
class Training:
    """The newest running run, as last read: what the line says."""

    path: Path
    step: int
    total: int
    eta: float | None  # seconds left, None when it cannot be told yet
    others: int  # how many other runs are training too


def eta_seconds(status: RunStatus) -> float | None:
    """Seconds left at the run's average pace so far: its training time over its steps (the status
    records both, counted across resumes). None before a step is timed, and at the end."""
    elapsed = status.elapsed
    if elapsed is None or elapsed <= 0 or not 0 < status.step < status.total_steps:
        return None
    return (status.total_steps - status.step) * elapsed / status.step


def _running_status(run: RunDir) -> RunStatus | None:
    """The status of ``run`` if it is training now (its process alive), else None; a run whose
    files cannot be read now counts as not training."""
    try:
        if run.liveness() != "running":
            return None
        status = run.status()  # read again: it may have ended in between
    except UNREADABLE:
        return None
    return status if status is not None and status.state == "running" else None


def read_training(folder: Path) -> Training | None:
    """The newest run in ``folder`` that is training, and how many others are; OSError if the folder
    cannot be listed now (runs appearing or going while it is read)."""
    running = [(run, status) for run in find_runs(folder) if (status := _running_status(run)) is not None]
    if not running:
        return None
    run, status = running[0]  # find_runs lists the newest first
    return Training(run.path, status.step, status.total_steps, eta_seconds(status), len(running) - 1)


def line_forms(training: Training) -> list[list[Part]]:
    """The line from the fullest to the shortest form; the widget shows the first that fits."""
    name: list[Part] = [(training.path.name, "bold")]
    if training.others:
        name.append(f" (+{training.others} more)")
    step = f"{training.step}/{training.total}"
    percent = f" ({100 * training.step / training.total:.0f}%)" if training.total else ""
    eta = f"ETA {format_duration(training.eta) if training.eta is not None else '—'}"
    doing: Part = ("training", "bold $text-success")
    key: Part = (FOLLOW_KEY, "bold $text-accent")
    return [
        [doing, " ", *name, f" · step {step}{percent} · {eta} · ", key, " follows"],
        [doing, " ", *name, f" · step {step} · {eta} · ", key, " follows"],
        [doing, " ", *name, f" · {step} · {eta} · ", key, " follows"],
        [key, ": ", doing, " ", *name, f" · {step} · {eta}"],
        [key, ": ", *name, f" {step} {eta}"],  # cut at the end where even this is too wide
    ]


def _width(parts: list[Part]) -> int:
    return Content.assemble(*parts).cell_length


class TrainingIndicator(Static):
    """While a run in ``runs_folder`` trains: one line naming the newest such run, its step, its ETA
    and the key that follows it; hidden otherwise. :attr:`running` is the run it names."""

    DEFAULT_CSS = """
    TrainingIndicator {
        display: none;
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    class Read(Message):
        """What the worker read: the running run, or None."""

        bubble = False  # the widget's own business

        def __init__(self, training: Training | None) -> None:
            super().__init__()
            self.training = training

    def __init__(
        self,
        runs_folder: Path,
        *,
        id: str | None = None,
        classes: str | None = None,
        interval: float = 2.0,
    ) -> None:
        super().__init__("", id=id, classes=classes)
        self.runs_folder = runs_folder
        self.interval = interval
        self.training: Training | None = None
        self._shown: list[Part] | None = None  # the form shown, so that an unchanged line is not redrawn
        self._failure: str | None = None  # the last reading's failure, said once (not every tick)

    @property
    def running(self) -> Path | None:
        """The run the line names (the newest running one), or None while none trains."""
        return self.training.path if self.training else None

    @property
    def line(self) -> str:
        """The line in full, whatever the width ("" while no run trains)."""
        return Content.assemble(*line_forms(self.training)[0]).plain if self.training else ""

    def on_mount(self) -> None:
        self.set_interval(self.interval, self.check)
        # Back on its screen: read at once rather than show what was read before it was left.
        self.app.screen_change_signal.subscribe(self, self._screen_changed)
        self.check()

    def _screen_changed(self, screen: Screen) -> None:
        if screen is self.screen:
            self.check()

    def check(self) -> None:
        """Read the runs again, in a worker; nothing while the screen is out of sight."""
        if self.is_attached and self.screen.is_current:
            self._read()

    @work(thread=True, exclusive=True, group="training-indicator", name="Reading runs", exit_on_error=False)
    def _read(self) -> None:
        try:
            training = read_training(self.runs_folder)
        except OSError:
            return  # the folder changed while it was listed: the next tick reads it again
        if not get_current_worker().is_cancelled:
            self.post_message(self.Read(training))

    @on(Worker.StateChanged)
    def _report_failed_read(self, event: Worker.StateChanged) -> None:
        """A failed reading is one notification; the same failure on the next ticks is not repeated."""
        error = event.worker.error
        if event.state is WorkerState.SUCCESS:
            self._failure = None
        elif event.state is WorkerState.ERROR and error is not None and failure_text(error) != self._failure:
            self._failure = failure_text(error)
            self.notify(self._failure, title="Reading runs failed", severity="warning")

    def on_training_indicator_read(self, message: TrainingIndicator.Read) -> None:
        if message.training == self.training:
            return  # most reads: the status changes only when the trainer logs a step
        self.training = message.training
        self.display = message.training is not None
        self.tooltip = f"{self.line}: {FOLLOW_KEY} shows it on the Train screen" if self.training else None
        self._fit()

    def on_resize(self, _: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        """The fullest form of the line that fits the widget's width."""
        forms = line_forms(self.training) if self.training else [[]]
        fitting = next((form for form in forms if _width(form) <= self.size.width), forms[-1])
        if fitting != self._shown:
            self._shown = fitting
            self.update(Content.assemble(*fitting))
