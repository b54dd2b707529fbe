"""The Train screen: start ``cfg-tui train`` as a detached process, follow it live, stop, resume.

The screen never trains: training is a child process in its own session (so it survives the app
and the SSH connection), and the screen only reads the run directory's small files on timers:
``metrics.jsonl`` through :class:`MetricsTail` (only the new lines: loss records to the loss chart,
quality records to the quality chart) and ``status.json``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Header, Input, Select, Static
from textual.worker import Worker

from core.checkpoint import read_metadata
from core.configs import auto_every
from core.lifecycle import create_run, prepare_resume, stop_trainer
from core.presets import PRESETS
from core.runs import MetricsTail, RunDir, RunStatus, find_runs, loss_records
from core.settings import (
    DEVICES,
    RunPlan,
    RunSettings,
    SettingsError,
    new_run_path,
    plan_run,
    preset_name,
    resolve_device,
)
from core.trainer import PRECISIONS as TRAIN_PRECISIONS
from tui.defaults import LR_LABEL, TRAIN_PRESET
from tui.launcher import launch_training
from tui.parse import parse_int, parse_number, parse_whole
from tui.screens.base import USER_ERRORS, AppScreen, one_line
from tui.screens.confirm import ConfirmScreen
from tui.widgets.compare_chart import CompareChart
from tui.widgets.footer import FittedFooter
from tui.widgets.form import action_button, choose, field
from tui.widgets.loss_chart import LossChart
from tui.widgets.machine_panel import MachinePanel
from tui.widgets.preview_pane import PreviewPane
from tui.widgets.quality_chart import QualityChart
from tui.widgets.run_list import RUN_FILE_ERRORS, UNREADABLE, RunList
from tui.widgets.run_stats import IDLE_TEXT, run_stats

PRESET_CHOICES = ("auto", *PRESETS)
"""``auto`` (the default, as for ``cfg-tui train``) is the lab's recipe on a GPU, else ``cpu``."""

FOLLOW_SECONDS = 0.33
"""How often the followed run's files are read: live enough, and cheap (about 3 reads a second)."""
RUNS_SECONDS = 2.0
"""How often every run's status is re-read for the run list."""
PRECISIONS = ("preset", *TRAIN_PRECISIONS)
"""bf16 is autocast of the network (1.5-3x faster on GPUs and on CPUs with AVX512-BF16 or AMX);
auto picks it where the device has it natively; preset keeps the preset's choice."""
LOG_EVERY = 10
"""The trainer's default steps per record: checkpoints and previews fall on these."""
VIEWS = {"charts": "train-charts", "preview": "preview", "machine": "machine"}
"""The views of the followed run (and their widgets' ids): all at once on a roomy screen, else one
at a time (v shows the next)."""
ROOMY = (140, 40)
"""Columns and lines from which every view is shown at once."""
T = TypeVar("T")


def optional(text: str, parse: Callable[[str], T]) -> T | None:
    """An empty field means the preset's value (None); anything else must parse."""
    return parse(text) if text.strip() else None


@dataclass
class RunCreated(Message):
    """A new run's folder is written (config.json); its trainer can start."""

    run: RunDir
    plan: RunPlan
    intervals: list[str]


def weights_text(run: RunDir, status: RunStatus | None, state: str) -> str:
    """Which step's weights opening ``run`` in Sample gives, and, while it trains, that each
    Generate loads its newest checkpoint."""
    try:
        step: str | int = read_metadata(run.model_path).get("step", "?")
    except (OSError, ValueError):
        step = "?"
    text = f"{run.path.name}: the weights of step {step}"
    if state == "running" and status is not None:
        text += f"; it is at step {status.step}/{status.total_steps}: each Generate loads its newest weights"
    return text


def resume_question(run: RunDir, status: RunStatus | None) -> str:
    """Resume ``run``? naming where from: its last checkpoint, or the start."""
    step = status.checkpoint_step if status else None
    total = f" (of {status.total_steps})" if status else ""
    where = f"its checkpoint at step {step}{total}" if step is not None else "the start (no checkpoint yet)"
    return f"Resume {run.path.name} from {where}?"


def _metrics(run: RunDir) -> list[dict]:
    """A run's records, or none if its metrics cannot be read now."""
    try:
        return run.metrics()
    except (OSError, ValueError):
        return []


class TrainScreen(AppScreen):
    """A form on the left; the followed run's chart and numbers, and every run, on the right."""

    BINDINGS = [
        Binding("ctrl+g", "start", "Start", tooltip="start a run with the form's settings"),
        # Priority: an Input binds ctrl+x to cut, and stopping must work from any field.
        Binding(
            "ctrl+x", "stop", "Stop", priority=True, tooltip="stop the followed run (it checkpoints first)"
        ),
        Binding("ctrl+r", "resume", "Resume", tooltip="resume the selected run"),
        Binding("ctrl+o", "open_in_sample", "Open", tooltip="open the selected run in Sample"),
        Binding("v", "next_view", "View", tooltip="next view (charts, preview, machine) when not all fit"),
        Binding("t", "toggle_x", "Step/time", show=False, tooltip="comparison: against step or wall time"),
        Binding("k", "toggle_kind", "Loss/FD", show=False, tooltip="comparison: loss or quality (FD)"),
    ]
    PALETTE = [
        ("Start training", "Launch a run with the form's settings (ctrl+g)", "start"),
        ("Stop training", "Checkpoint and stop the followed run (ctrl+x)", "stop"),
        ("Resume run", "Continue the selected run (ctrl+r)", "resume"),
        ("Open run in Sample", "Sample from the selected run (ctrl+o)", "open_in_sample"),
        ("Next view", "Charts, the newest preview, the machine (v)", "next_view"),
        ("Compare: step or time", "Plot the compared runs against step or wall time (t)", "toggle_x"),
        ("Compare: loss or quality", "Plot the compared runs' loss or their FD (k)", "toggle_kind"),
        ("Compare: clear", "Unmark every run marked for comparison", "clear_marks"),
    ]
    HELP_KEYS = [
        Binding("enter", "", "follow the run under the cursor", key_display="enter (run list)"),
        Binding("space", "", "mark the run to compare (2 or more)", key_display="space (run list)"),
    ]
    # Wide enough for two charts side by side (each as wide as the single one at 80 columns).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]

    def __init__(self) -> None:
        super().__init__()
        self.followed: RunDir | None = None
        self._tail: MetricsTail | None = None
        self._last: dict = {}
        self._batch_size: int | None = None
        self._launched: dict[Path, tuple[subprocess.Popen, float]] = {}
        """Trainers this screen started, and when (for "starting Python" until they write a status)."""
        self.view = "charts"
        self.compared: list[Path] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="train-main"):
            with Vertical(id="train-form"):
                yield from self._form()
            with Vertical(id="train-right"):
                yield Static(IDLE_TEXT, id="train-stats")
                with Vertical(id="train-views"):
                    yield MachinePanel(id="machine", classes="pane")
                    with Container(id="train-charts"):
                        yield LossChart(id="loss-chart", classes="pane")
                        yield QualityChart(id="quality-chart", classes="pane")
                        yield CompareChart(id="compare-chart", classes="pane")
                    yield PreviewPane(self.settings.graphics, id="preview", classes="pane")
                yield RunList(id="run-list", classes="pane")
        yield FittedFooter()

    def _form(self) -> ComposeResult:
        """One row per setting, labelled with its ``cfg-tui train`` option (the words its errors use);
        empty fields show the preset's value as a placeholder."""
        preset = choose(PRESET_CHOICES, TRAIN_PRESET, "preset")
        yield field("preset", preset).add_class("gap")
        yield field("steps", Input(id="steps", compact=True))
        yield field("batch size", Input(id="batch-size", compact=True))
        yield field(LR_LABEL, Input(id="lr", compact=True))
        yield field("eta", Input(id="eta", compact=True))
        device = choose(DEVICES, "auto", "device")
        yield field("device", device).add_class("gap")
        precisions = choose(PRECISIONS, "preset", "precision")
        yield field("precision", precisions)
        yield field("nproc", Input(id="nproc", placeholder="1", compact=True))
        yield field("checkpoint", Input(id="checkpoint-every", compact=True)).add_class("gap")
        yield field("preview", Input(id="preview-every", compact=True))
        yield field("run name", Input(id="run-name", compact=True)).add_class("gap")
        yield action_button("Start", "ctrl+g", "start", id="start")
        with VerticalScroll(id="preset-help-box") as box:
            box.can_focus = False  # tab goes from Start to the charts' side, not into the description
            yield Static(id="preset-help")

    def on_mount(self) -> None:
        self.sub_title = "Train"
        self._show_preset_defaults()
        self.query_one("#loss-chart", LossChart).border_title = "loss (log)"
        self.query_one("#run-list", RunList).border_title = "runs (enter follows, space compares)"
        self.query_one("#preview", PreviewPane).border_title = "newest preview (w = 3, digits across)"
        self._arrange()
        self._refresh_runs()
        self._follow_running()
        self.set_interval(FOLLOW_SECONDS, self._update_followed)
        self.set_interval(RUNS_SECONDS, self._refresh_runs)

    # --- the form -------------------------------------------------------------------------------

    @on(Select.Changed, "#preset")
    @on(Select.Changed, "#device")
    @on(Input.Changed, "#steps")
    def _preset_changed(self) -> None:
        self._show_preset_defaults()

    def chosen_preset(self) -> str:
        """The preset the form would train: ``auto`` resolved for the chosen device, as ``cfg-tui train``
        resolves it (a device that is not here counts as ``auto``: starting says why it cannot)."""
        try:
            device = resolve_device(self._select("device") or "auto")
        except SettingsError:
            device = resolve_device("auto")
        return preset_name(self._select("preset") or TRAIN_PRESET, device)

    def _show_preset_defaults(self) -> None:
        """Placeholders say what an empty field means, so the form documents the preset."""
        preset = self.chosen_preset()
        train = PRESETS[preset].train
        try:
            steps = optional(self._value("steps"), lambda s: parse_whole("steps", s)) or train.steps
        except ValueError:
            steps = train.steps
        every = f"every {auto_every(steps, LOG_EVERY)}"
        defaults = {
            "steps": train.steps,
            "batch-size": train.batch_size,
            "lr": f"{train.lr:g}",
            "eta": f"{train.eta:g}",
            "checkpoint-every": every,
            "preview-every": every,
            "run-name": f"time-{preset}",
        }
        for name, value in defaults.items():
            self.query_one(f"#{name}", Input).placeholder = str(value)
        auto = f"auto → {preset} here: " if self._select("preset") == "auto" else ""
        self.query_one("#preset-help", Static).update(auto + PRESETS[preset].description)

    def _value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value

    def _select(self, field: str) -> str:
        value = self.query_one(f"#{field}", Select).value
        return value if isinstance(value, str) else ""

    def form_settings(self) -> RunSettings:
        """The form as :class:`RunSettings`; ValueError naming a field that is not a number."""
        return RunSettings(
            preset=self._select("preset") or TRAIN_PRESET,
            steps=optional(self._value("steps"), lambda s: parse_whole("steps", s)),
            batch_size=optional(self._value("batch-size"), lambda s: parse_whole("batch size", s)),
            lr=optional(self._value("lr"), lambda s: parse_number(LR_LABEL, s)),
            eta=optional(self._value("eta"), lambda s: parse_number("eta", s)),
            device=self._select("device") or "auto",
            # Checked here too (core checks it as "processes"), so that the error names the field.
            processes=parse_int("nproc", self._value("nproc") or "1", 1),
            precision=None if self._select("precision") in ("preset", "") else self._select("precision"),
        )

    def form_plan(self) -> tuple[RunPlan, Path]:
        """The new run the form asks for, checked by the same code as ``cfg-tui train``, and its folder."""
        plan = plan_run(self.form_settings())
        return plan, new_run_path(self.settings.runs_folder, plan.preset, self._value("run-name"))

    def interval_args(self) -> list[str]:
        """``--checkpoint-every N --preview-every N`` as given (empty fields: the trainer's default,
        the placeholder's value); ValueError naming a field that is not a whole number ≥ 0."""
        args = []
        for name, option in (("checkpoint", "checkpoint-every"), ("preview", "preview-every")):
            if self._value(option).strip():
                args += [f"--{option}", str(parse_int(name, self._value(option), 0))]
        return args

    def _data_root_args(self) -> list[str]:
        data_root = self.settings.data_root
        return ["--data-root", str(data_root)] if data_root else []

    @on(Input.Submitted)
    def _field_submitted(self) -> None:
        """Enter in a field moves on, like a form should; ctrl+g starts."""
        self.focus_next()

    # --- actions, in the order of BINDINGS ------------------------------------------------------

    def action_start(self) -> None:
        """Check the form here (a bad field is one notification, nothing made), then create the run
        in a worker (it reads the training data) and launch its trainer."""
        planned = self.checked(lambda: (*self.form_plan(), self.interval_args()), "Start")
        if planned is None:
            return
        plan, path, intervals = planned
        self.query_one("#train-stats", Static).update(
            Text.assemble((path.name, "bold"), "  preparing: reading the training data…")
        )
        self._create(plan, path, intervals)

    @work(thread=True, exclusive=True, group="create", name="Start", exit_on_error=False)
    def _create(self, plan: RunPlan, path: Path, intervals: list[str]) -> None:
        run, _ = create_run(
            plan, path, data_root=self.settings.data_root, command=["cfg-tui", "(Train form)"]
        )
        self.post_message(RunCreated(run, plan, intervals))

    def on_run_created(self, message: RunCreated) -> None:
        plan, run = message.plan, message.run
        args = ["--resume", str(run.path), "--device", plan.device.type, *message.intervals]
        args += ["--nproc", str(plan.processes)] if plan.processes > 1 else []
        if self._launch(args + self._data_root_args(), run.path):
            self.notify(f"started {run.path.name}", title="Start")

    def worker_failed(self, worker: Worker) -> None:
        if worker.name == "Start":
            self._show_stats()

    def action_stop(self) -> None:
        """Graceful stop of the followed run (SIGINT: it checkpoints first), once confirmed."""
        run = self.followed
        if run is None:
            self.notify("no run is followed; select one in the list and press enter", severity="warning")
            return
        if self._liveness(run) != "running":
            self.notify(f"{run.path.name} is not running", severity="warning")
            return
        step = self._status_of(run)
        question = (
            f"Stop {run.path.name}{f' at step {step.step}' if step else ''}? It writes a checkpoint "
            "first; ctrl+r resumes it from there."
        )
        self.app.push_screen(ConfirmScreen("Stop", question, "stop"), lambda yes: yes and self._stop(run))

    def _stop(self, run: RunDir) -> None:
        try:
            pid = stop_trainer(run)
        except USER_ERRORS as e:  # RunError: not ours to signal, or gone; OSError: the signal failed
            self.notify(one_line(e), title="Stop", severity="warning")
            return
        self.notify(f"stopping {run.path.name} (pid {pid}; it checkpoints first)", title="Stop")

    def action_resume(self) -> None:
        """Continue the selected run from its last checkpoint, if ``cfg-tui train --resume`` would,
        once confirmed."""
        run = self._selected_run()
        if run is None:
            return
        try:
            prepare_resume(run.path)
        except USER_ERRORS as e:
            self.notify(one_line(e), title="Resume", severity="warning")
            return
        question = resume_question(run, self._status_of(run))
        self.app.push_screen(
            ConfirmScreen("Resume", question, "resume"), lambda yes: yes and self._resume(run)
        )

    def _resume(self, run: RunDir) -> None:
        if self._launch(["--resume", str(run.path), *self._data_root_args()], run.path):
            self.notify(f"resuming {run.path.name}", title="Resume")

    def action_open_in_sample(self) -> None:
        """Hand the selected run's weights to the Sample screen, saying which step they are of."""
        run = self._selected_run()
        if run is None:
            return
        if not run.model_path.is_file():
            self.notify(f"{run.path.name} has no checkpoint yet", severity="warning")
            return
        self.cfg_app.open_in_sample(run.model_path)
        self.notify(weights_text(run, self._status_of(run), self._liveness(run)), title="Open in Sample")

    def action_next_view(self) -> None:
        names = list(VIEWS)
        self.view = names[(names.index(self.view) + 1) % len(names)]
        self._arrange()

    def action_toggle_x(self) -> None:
        axis = self.query_one(CompareChart).toggle_x()
        self.notify(f"comparison against {'wall time' if axis == 'time' else 'step'}", title="Compare")

    def action_toggle_kind(self) -> None:
        kind = self.query_one(CompareChart).toggle_kind()
        self.notify(f"comparing {'quality (FD)' if kind == 'quality' else 'loss'}", title="Compare")

    def action_clear_marks(self) -> None:
        self.query_one(RunList).clear_marks()

    # --- the views ------------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._arrange()

    def _arrange(self) -> None:
        """Every view on a roomy screen; else the chosen one (v), its title saying so. While runs
        are compared, their chart replaces the followed run's two."""
        roomy = self.size.width >= ROOMY[0] and self.size.height >= ROOMY[1]
        self.set_class(roomy, "-roomy")
        for name, id in VIEWS.items():
            self.query_one(f"#{id}").display = roomy or name == self.view
        comparing = len(self.compared) >= 2
        self.query_one(CompareChart).display = comparing
        self.query_one(LossChart).display = self.query_one(QualityChart).display = not comparing
        hint = "" if roomy else " · v: next view"
        self.query_one(MachinePanel).border_title = f"machine{hint}"
        compare = f"{len(self.compared)} runs (t: step/time, k: loss/FD){hint}"
        self.query_one(CompareChart).border_title = compare
        self.query_one(LossChart).border_title = f"loss (log){hint}"
        preview = "newest previews" if comparing else "newest preview (w = 3, digits across)"
        self.query_one(PreviewPane).border_title = preview + hint

    @on(RunList.MarksChanged)
    def _marks_changed(self, event: RunList.MarksChanged) -> None:
        self.compared = event.paths
        self._show_compared()
        self._arrange()
        if len(self.compared) == 1:
            self.notify("mark one more run (space) to compare", title="Compare")

    def _show_compared(self) -> None:
        """The compared runs' curves and previews, or the followed run's previews."""
        preview = self.query_one(PreviewPane)
        if len(self.compared) < 2:
            preview.show_runs([self.followed.path] if self.followed else [])
            return
        runs = [RunDir(path) for path in self.compared]
        self.query_one(CompareChart).set_runs([(run.path.name, _metrics(run)) for run in runs])
        preview.show_runs(self.compared)

    # --- launching and following ----------------------------------------------------------------

    def _launch(self, args: list[str], path: Path) -> bool:
        """Start the detached trainer for ``path`` and follow it; False (and a notification) if not."""
        starting = self._launched.get(path)
        if starting is not None and starting[0].poll() is None:
            self.notify(f"{path.name} is already starting", severity="warning")
            return False
        try:
            self._launched[path] = launch_training(args, path), time.time()
        except OSError as e:
            self.notify(f"could not start training: {e}", severity="error")
            return False
        self.follow(RunDir(path))
        self._refresh_runs()
        return True

    def follow(self, run: RunDir) -> None:
        """Show ``run`` live from its first logged step."""
        self.followed, self._tail, self._last, self._batch_size = run, MetricsTail(run.metrics_path), {}, None
        self.query_one("#loss-chart", LossChart).clear()
        self.query_one("#loss-chart", LossChart).border_subtitle = run.path.name
        self.query_one("#quality-chart", QualityChart).clear()
        self.query_one("#run-list", RunList).follow(run.path)
        if len(self.compared) < 2:
            self.query_one(PreviewPane).show_runs([run.path])
        self._update_followed()

    def _follow_running(self) -> None:
        """Reopening the app shows a still-running run live again: follow the newest running one."""
        for run in find_runs(self.settings.runs_folder):
            if self._liveness(run) == "running":
                self.follow(run)
                return

    def _update_followed(self) -> None:
        """One timer tick: new metrics into the chart, status into the stats, a new preview drawn,
        an early exit noticed."""
        self._check_launched()
        self.query_one(PreviewPane).check()
        if self.followed is None or self._tail is None:
            return
        records = self._tail.read_new()
        charts = self.query_one("#loss-chart", LossChart), self.query_one("#quality-chart", QualityChart)
        for chart in charts:
            if self._tail.restarted:
                chart.clear()
            chart.add(records)
        losses = loss_records(records)
        if losses:
            self._last = losses[-1]  # the stats read images/s and memory: a loss record's
        self._show_stats()

    def _show_stats(self) -> None:
        stats, run = self.query_one("#train-stats", Static), self.followed
        if run is None:
            stats.update(IDLE_TEXT)
            self.query_one(MachinePanel).watch_pid(None)
            return
        try:
            if self._batch_size is None:
                self._batch_size = run.config().train.batch_size
            status = run.status()
        except RUN_FILE_ERRORS:
            return  # caught between writes of another writer, or removed; the next tick reads it
        state, starting = self._liveness(run), self._starting(run, status)
        stats.update(run_stats(run, state, status, self._last, self._batch_size, starting))
        launched = self._launched.get(run.path)
        running = status is not None and state == "running" and status.on_this_host
        # The process this screen launched, while it lives: under torchrun it is the parent of every rank.
        ours = launched is not None and launched[0].poll() is None
        pid = launched[0].pid if ours else status.pid if running else None
        self.query_one(MachinePanel).watch_pid(pid)

    def _starting(self, run: RunDir, status: RunStatus | None) -> str | None:
        """``starting Python (pid, seconds)`` for a trainer this screen launched that has not yet
        written a status (its own, or its rank 0's under torchrun); else None."""
        launched = self._launched.get(run.path)
        if launched is None or launched[0].poll() is not None:
            return None
        process, at = launched
        if status is not None and status.updated >= at:
            return None
        return f"starting Python and torch (pid {process.pid}, {time.time() - at:.0f} s)"

    @staticmethod
    def _liveness(run: RunDir) -> str:
        try:
            return run.liveness()
        except RUN_FILE_ERRORS:
            return UNREADABLE

    @staticmethod
    def _status_of(run: RunDir) -> RunStatus | None:
        try:
            return run.status()
        except RUN_FILE_ERRORS:
            return None

    def _check_launched(self) -> None:
        """A trainer this app launched exited: say why if it failed (polling also reaps the child)."""
        for path, (process, _) in list(self._launched.items()):
            code = process.poll()
            if code is None:
                continue
            del self._launched[path]
            if code != 0:
                reason = RunDir(path).end_reason(code)
                self.notify(f"{path.name}: {reason}", title="Training failed", severity="error", timeout=15)
            self._refresh_runs()

    # --- the run list ---------------------------------------------------------------------------

    def _refresh_runs(self) -> None:
        self.query_one("#run-list", RunList).refresh_runs(self.settings.runs_folder)
        if len(self.compared) >= 2:
            self._show_compared()

    @on(DataTable.RowSelected, "#run-list")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a run follows it."""
        if event.row_key.value is not None:
            self.follow(RunDir(event.row_key.value))

    def _selected_run(self) -> RunDir | None:
        """The followed run (the banner's), or the one the user moved the list's cursor to; notifies
        when there is none."""
        path = self.query_one("#run-list", RunList).target()
        if path is not None:
            return RunDir(path)
        self.notify("no run selected: follow one (enter in the list) or start one", severity="warning")
        return None
