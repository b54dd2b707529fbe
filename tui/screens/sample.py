"""The Sample screen: pick digits, guidance scales and a sampler (preset, solver, steps, grid,
guidance method), generate in a worker, see and export the grid."""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Header, Input, Label, ProgressBar, Select, Static
from textual.widgets.select import InvalidSelectValueError
from textual.worker import Worker, WorkerState, get_current_worker

from core.checkpoint import load_checkpoint, read_config
from core.choices import check_guidance, check_per_class, check_sampling_memory, check_seed
from core.grids import GRIDS
from core.guidance import METHODS, Calls, Guidance, parameters, parse_guidance
from core.images import grid_figure, guidance_title, row_names, save_png, save_samples_npz, to_uint8
from core.runs import checkpoint_file
from core.sampling import SAMPLERS, Sampler, build_sampler, resolve_grid, with_guide_models
from core.sampling import sample as sample_images
from core.solvers import SOLVERS, Trajectory
from core.unet import UNet
from tui.defaults import GUIDANCE, NULL_NAME, PER_CLASS, PER_CLASS_LABEL, SAMPLER_PRESET, SEED
from tui.format import format_duration, png_record
from tui.graphics import GRAPHICS_MODES
from tui.parse import parse_floats, parse_int
from tui.screens.base import USER_ERRORS, AppScreen, existing_path, one_line, user_path
from tui.screens.export import ExportChoice, ExportScreen
from tui.settings import Remembered
from tui.widgets.digit_picker import DigitPicker
from tui.widgets.footer import FittedFooter
from tui.widgets.form import action_button, choose, field
from tui.widgets.image_grid import GridPanel, ImageGrid
from tui.widgets.training_indicator import FOLLOW_KEY, TrainingIndicator

TRAJECTORY_FRAMES = 20
PLAY_FPS = 8
DIGIT_RULE = "toggle a digit (anywhere but in a text field)"
REMEMBERED = ("guidance", "per-class", "seed", "preset", "solver", "steps", "time-grid", "method", "params")
"""The fields whose values the next session starts with (the checkpoint comes from the command line)."""


def model_device(model: UNet) -> torch.device:
    return next(model.parameters()).device


def method_params(guide: Guidance) -> str:
    """The ``key=value,...`` part of a method's spec: its parameters that differ from the defaults."""
    return guide.describe().partition(":")[2]


def default_params(method: str) -> str:
    """A method's parameters at their defaults, as the params field reads them (``start=0.2,end=0.8``);
    a text parameter (auto's checkpoint) is a file, shown as FILE as on the command line."""
    shown = {key: f"{value:g}" if isinstance(value, float) else str(value) or "FILE"
             for key, value in parameters(METHODS[method]).items()}  # fmt: skip
    return ",".join(f"{key}={value}" for key, value in shown.items()) or "none"


def show_defaults(params: Input, method: str) -> None:
    """The params field's placeholder, and its tooltip in full (a long default list is cut at 28
    columns), with the method's paper."""
    params.placeholder = default_params(method)
    params.tooltip = f"{method}: {default_params(method)}\n{METHODS[method].paper}"


def nfe_text(scales: tuple[float, ...], nfes: list[float]) -> str:
    """``8 NFE per image``, or by w where they differ: ``NFE per image 4 (w=1), 8 (w=3,5)``."""
    by_nfe: dict[float, list[str]] = {}
    for w, nfe in zip(scales, nfes, strict=True):
        by_nfe.setdefault(round(nfe, 2), []).append(f"{w:g}")
    if len(by_nfe) == 1:
        return f"{next(iter(by_nfe)):g} NFE per image"
    return "NFE per image " + ", ".join(f"{nfe:g} (w={','.join(ws)})" for nfe, ws in by_nfe.items())


@dataclass(frozen=True)
class SampleRequest:
    checkpoint: Path
    digits: tuple[int, ...]
    null: bool  # a row of unconditional samples too
    scales: tuple[float, ...]
    per_class: int
    sampler: Sampler  # auto's guide model is loaded in the worker
    seed: int

    def labels_for(self, num_classes: int) -> tuple[int, ...]:
        """The rows' labels for a model of ``num_classes`` classes (its null label is ``num_classes``)."""
        if any(d >= num_classes for d in self.digits):
            raise ValueError(f"digits: this model knows 0-{num_classes - 1} and null only")
        return self.digits + ((num_classes,) if self.null else ())


@dataclass
class SampleResult:
    """What the worker hands back: numpy arrays only."""

    request: SampleRequest
    labels: tuple[int, ...]  # one per row
    null_label: int
    images: list[np.ndarray]  # per scale: float32 (rows · per_class, 1, H, W) in [-1, 1]
    pixels: list[np.ndarray]  # per scale: uint8 (rows · per_class, H, W), as in the PNG
    frames: list[np.ndarray]  # per scale: uint8 (T, rows · per_class, H, W)
    sampler: str  # what sampled, as Sampler.describe() reads (auto's guide file included)
    nfe: list[float]  # per scale: network evaluations per image, counted


@dataclass
class SamplesReady(Message):
    result: SampleResult


@dataclass
class SampleProgress(Message):
    done: int
    total: int


@dataclass
class SampleStatus(Message):
    """A line from the worker for the status line (fitting a time grid takes a while)."""

    text: str


@dataclass
class ModelStatus(Message):
    """The start checkpoint's loading, for the status line unless a generation is using it."""

    text: str


class SampleScreen(AppScreen):
    """Generation runs in a thread worker; the UI only ever holds uint8/float32 numpy arrays."""

    BINDINGS = [
        Binding("ctrl+g", "generate", "Generate", priority=True, tooltip="generate"),
        Binding("ctrl+e", "export", "Export", priority=True, tooltip="export the grid as PNG (and .npz)"),
        Binding(
            "ctrl+l",
            "preset",
            "lab/fast",
            priority=True,
            tooltip="switch the sampler preset, fast ↔ lab (fills solver, steps, grid, method)",
        ),
        Binding("f9", "full_screen", "Full", tooltip="full-screen grid: hide or show the form"),
        Binding("p", "play", "Play", show=False, tooltip="play the trajectory from noise to digit"),
        Binding("plus,equals_sign", "zoom(1)", "Zoom in", show=False, tooltip="zoom in (bigger tiles)"),
        Binding("minus", "zoom(-1)", "Zoom out", show=False, tooltip="zoom out (smaller tiles)"),
        Binding("left", "turn(-1)", "Prev", show=False, tooltip="previous columns / guidance panel"),
        Binding("right", "turn(1)", "Next", show=False, tooltip="next columns / guidance panel"),
        Binding("pageup", "page(-1)", "Rows up", show=False, tooltip="previous rows of the grid"),
        Binding("pagedown", "page(1)", "Rows down", show=False, tooltip="next rows of the grid"),
        Binding(
            "escape",
            "escape",
            "Cancel",
            show=False,
            tooltip="cancel the generation; else leave a text field (digit keys toggle again)",
        ),
        Binding("f5", "reset", "Defaults", show=False, tooltip="reset the form to the defaults"),
        # Not in the footer (no room at 80 columns): the line over the grid names the key while a run trains.
        Binding(FOLLOW_KEY, "follow", "Follow", show=False, tooltip="follow the training run (Train screen)"),
        *[Binding(str(d), f"toggle({d})", f"Digit {d}", show=False, tooltip=DIGIT_RULE) for d in range(10)],
        Binding("n", "toggle_null", "Null", show=False, tooltip=f"toggle {NULL_NAME} (unconditional)"),
    ]
    PALETTE = [
        ("Generate", "Sample the chosen digits at each guidance scale (ctrl+g)", "generate"),
        ("Export", "Write the grid as PNG (and .npz) (ctrl+e)", "export"),
        ("Sampler preset", "Switch between the fast sampler and the lab's (ctrl+l)", "preset"),
        ("Play trajectory", "Watch the samples go from noise to digits (p)", "play"),
        ("Full-screen grid", "Hide or show the form (f9)", "full_screen"),
        ("Reset the form", "Back to the defaults, also for the next session (f5)", "reset"),
        ("Follow training", f"Show the training run on the Train screen ({FOLLOW_KEY})", "follow"),
        ("Graphics mode", "Draw the grid as half-blocks, or by kitty's protocol or sixel (next)", "graphics"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.result: SampleResult | None = None
        self._model: tuple[Path, float, UNet] | None = None
        self._model_lock = threading.Lock()  # the preload and a generation may both want the model
        self._last_progress = 0.0
        self._started = 0.0  # when the current generation started (for its ETA)
        self._generating = ""  # what it makes, for the status line
        self._summary = ""  # what the last generation made

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="sample-form"):
                yield Label("digits: 0-9, n or click", classes="form-label")
                yield DigitPicker(id="digits")
                yield field("guidance", Input(GUIDANCE, id="guidance", compact=True)).add_class("gap")
                yield field(PER_CLASS_LABEL, Input(str(PER_CLASS), id="per-class", compact=True))
                yield field("seed", Input(str(SEED), id="seed", compact=True))
                yield from self._sampler_fields(SAMPLERS[SAMPLER_PRESET])
                yield Label("checkpoint", classes="form-label")
                yield Input(str(self.settings.checkpoint), id="checkpoint", compact=True)
                yield action_button("Generate", "ctrl+g", "generate", id="generate")
            with Vertical(id="sample-view"):
                # Hidden, taking no room, while no run trains.
                yield TrainingIndicator(self.settings.runs_folder, id="training")
                yield ImageGrid(id="grid")
                yield ProgressBar(total=1, show_eta=False, id="progress")
                yield Static("", id="sample-status")
        yield FittedFooter()

    def _sampler_fields(self, sampler: Sampler) -> ComposeResult:
        """The preset and the settings it fills (the request is built from these fields)."""
        yield field("sampler", choose(SAMPLERS, SAMPLER_PRESET, "preset")).add_class("gap")
        yield field("solver", choose(SOLVERS, sampler.solver, "solver"))
        yield field("steps", Input(str(sampler.steps), id="steps", compact=True))
        yield field("grid", choose(GRIDS, sampler.grid, "time-grid"))
        yield field("method", choose(METHODS, sampler.guide.name, "method"))
        params = Input(method_params(sampler.guide), id="params", compact=True)
        show_defaults(params, sampler.guide.name)
        yield field("params", params)

    def on_mount(self) -> None:
        self.sub_title = "Sample"
        self._progress(None)
        self.player = self.set_interval(1 / PLAY_FPS, self._next_frame, pause=True)
        self.query_one(DigitPicker).focus()
        self.query_one(ImageGrid).graphics = self.settings.graphics
        self._offer_classes(self.settings.checkpoint)
        self.call_after_refresh(self._recall)  # the Selects take their values when mounted
        self._preload(self.settings.checkpoint)

    # -- remembered between sessions --------------------------------------------------------

    def _recall(self) -> None:
        """Fill the form as the last session left it; a damaged file is one warning, then the defaults."""
        try:
            remembered = Remembered.read(self.settings.config_file)
        except USER_ERRORS as e:
            self.notify(one_line(e), title="Settings", severity="warning")
            return
        self._apply(remembered)

    def _apply(self, remembered: Remembered) -> None:
        """Set each remembered field; a value a Select does not offer (an old or edited file) is
        skipped."""
        with self.prevent(Select.Changed):  # the preset would refill the fields after this
            for id_ in REMEMBERED:
                if id_ not in remembered.fields:
                    continue
                with suppress(InvalidSelectValueError):
                    self.query_one(f"#{id_}", Input | Select).value = remembered.fields[id_]
        show_defaults(self.query_one("#params", Input), str(self.query_one("#method", Select).value))
        if remembered.digits is not None or remembered.null is not None:
            picker = self.query_one(DigitPicker)
            picker.choose(remembered.digits if remembered.digits is not None else picker.labels(),
                          bool(remembered.null))  # fmt: skip

    def remember(self) -> None:
        """Store the form for the next session (write errors are one warning: nothing else depends on it)."""
        picker = self.query_one(DigitPicker)
        fields = {id_: str(self.query_one(f"#{id_}", Input | Select).value) for id_ in REMEMBERED}
        try:
            Remembered(fields, sorted(picker.digits), picker.null).write(self.settings.config_file)
        except OSError as e:
            self.notify(f"cannot remember the settings: {e.strerror or e}", severity="warning")

    def before_quit(self) -> None:
        self.remember()

    def action_reset(self) -> None:
        """The defaults, in the form and for the next session."""
        sampler = SAMPLERS[SAMPLER_PRESET]
        defaults = {"guidance": GUIDANCE, "per-class": str(PER_CLASS), "seed": str(SEED),
                    "preset": SAMPLER_PRESET, "solver": sampler.solver, "steps": str(sampler.steps),
                    "time-grid": sampler.grid, "method": sampler.guide.name,
                    "params": method_params(sampler.guide)}  # fmt: skip
        picker = self.query_one(DigitPicker)
        self._apply(Remembered(defaults, list(range(picker.num_classes)), False))
        self.query_one(ImageGrid).zoom(0)
        self.remember()
        self.notify("the form is back to the defaults", title="Reset")

    def use_checkpoint(self, checkpoint: Path) -> None:
        self.query_one("#checkpoint", Input).value = str(checkpoint)

    @on(Input.Changed, "#checkpoint")
    def _checkpoint_changed(self, event: Input.Changed) -> None:
        try:
            checkpoint = user_path("checkpoint", event.value)
        except ValueError:
            return  # half typed (``~us`` on the way to ``~user``): generating says what is wrong
        self._offer_classes(checkpoint)

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        sampler = SAMPLERS[str(event.value)]
        self.query_one("#solver", Select).value = sampler.solver
        self.query_one("#steps", Input).value = str(sampler.steps)
        self.query_one("#time-grid", Select).value = sampler.grid
        self.query_one("#method", Select).value = sampler.guide.name
        self.query_one("#params", Input).value = method_params(sampler.guide)

    @on(Select.Changed, "#method")
    def _method_changed(self, event: Select.Changed) -> None:
        """Show the method's defaults; keep typed parameters only where the new method takes them."""
        method = str(event.value)
        params = self.query_one("#params", Input)
        show_defaults(params, method)
        try:
            parse_guidance(f"{method}:{params.value}")
        except ValueError:
            params.value = ""

    def _offer_classes(self, checkpoint: Path) -> None:
        """Size the digit picker to the checkpoint's classes (its header only: cheap); a path that is
        not (yet) a checkpoint changes nothing, and is refused when generating."""
        try:
            config = read_config(checkpoint_file(checkpoint))
        except USER_ERRORS:
            return
        self.query_one(DigitPicker).set_classes(config.num_classes)

    # -- actions ---------------------------------------------------------------------------

    def action_toggle(self, digit: int) -> None:
        self.query_one(DigitPicker).toggle(digit)

    def action_toggle_null(self) -> None:
        self.query_one(DigitPicker).toggle_null()

    def action_escape(self) -> None:
        """Cancel a generation in progress (it stops at its next solver step); else leave the field."""
        running = [w for w in self.workers if w.group == "generate" and w.state is WorkerState.RUNNING]
        if not running:
            self.query_one(DigitPicker).focus()
            return
        for worker in running:
            worker.cancel()
        self._status("cancelling…")

    def action_follow(self) -> None:
        """Show the run the training line names on the Train screen."""
        running = self.query_one(TrainingIndicator).running
        if running is None:
            self.notify("no run is training", severity="warning")
            return
        self.cfg_app.follow_run(running)

    def action_full_screen(self) -> None:
        """Hide the form so that the grid has the whole width (f9 again shows it)."""
        form = self.query_one("#sample-form")
        form.display = not form.display
        if not form.display and form.has_focus_within:
            self.query_one(DigitPicker).focus()

    def action_graphics(self) -> None:
        """The next way of drawing the grid (auto, kitty, sixel, halfblock); ``--graphics`` sets the first."""
        grid = self.query_one(ImageGrid)
        grid.graphics = GRAPHICS_MODES[(GRAPHICS_MODES.index(grid.graphics) + 1) % len(GRAPHICS_MODES)]
        self.notify(f"{grid.graphics}: drawing with {grid.draw_mode}", title="Graphics")

    def action_zoom(self, delta: int) -> None:
        self.query_one(ImageGrid).zoom(delta)
        self.call_after_refresh(self._hint_paging)

    def action_preset(self) -> None:
        """The next preset (fast ↔ lab); choosing it fills the fields (:meth:`_preset_changed`)."""
        select = self.query_one("#preset", Select)
        names = list(SAMPLERS)
        select.value = names[(names.index(str(select.value)) + 1) % len(names)]

    def action_turn(self, delta: int) -> None:
        """Sideways through the grid: the next page of columns, and past the last one the next
        guidance panel (from its first page) when panels are shown one at a time."""
        grid = self.query_one(ImageGrid)
        cols = grid.visible_cols()
        at_edge = cols.start == 0 if delta < 0 else cols.stop >= grid.per_row
        if not at_edge:
            grid.page_cols(delta)
        elif len(grid.visible_panels()) == 1 and len(grid.panels) > 1:
            grid.turn(delta)
            grid.first_col = 0 if delta > 0 else grid.per_row
            grid.scroll_cols(0)  # clamps to the last full page

    def action_page(self, delta: int) -> None:
        self.query_one(ImageGrid).page(delta)

    def action_generate(self) -> None:
        request = self.checked(self._request, "Cannot generate")
        if request is None:
            return
        total = len(request.scales) * request.sampler.steps
        self._progress(total)
        self._started = time.perf_counter()
        self._generating = generating_text(request)
        self._status(self._generating)
        self.remember()
        self._generate(request)

    def _request(self) -> SampleRequest:
        picker = self.query_one(DigitPicker)
        if not picker.digits and not picker.null:
            raise ValueError("digits: choose at least one (keys 0-9 and n)")
        value = lambda id_: self.query_one(f"#{id_}", Input).value.strip()  # noqa: E731
        checkpoint = existing_path("checkpoint", value("checkpoint"))
        return SampleRequest(
            checkpoint=checkpoint,
            digits=tuple(sorted(picker.digits)),
            null=picker.null,
            # The ranges of cfg-tui sample's options (core.configs): a seed beyond int64 or a per class
            # of 10^8 is refused here, not by torch in the worker.
            scales=check_guidance(parse_floats("guidance", value("guidance"))),
            per_class=check_per_class(parse_int(PER_CLASS_LABEL, value("per-class"), 1)),
            sampler=self._sampler(),
            seed=check_seed(parse_int("seed", value("seed"), 0)),
        )

    def _sampler(self) -> Sampler:
        """The fields' sampler, as ``cfg-tui sample --preset P --solver S --steps N --grid G --guide M``."""
        choice = lambda id_: str(self.query_one(f"#{id_}", Select).value)  # noqa: E731
        params = self.query_one("#params", Input).value.strip()
        try:
            guide = parse_guidance(f"{choice('method')}:{params}")
        except ValueError as e:
            raise ValueError(f"params: {e}") from None
        steps = parse_int("steps", self.query_one("#steps", Input).value, 1)
        return build_sampler(
            choice("preset"), solver=choice("solver"), steps=steps, grid=choice("time-grid"), guide=guide
        )

    @work(thread=True, exclusive=True, group="generate", name="Generate", exit_on_error=False)
    def _generate(self, request: SampleRequest) -> None:
        """Loads the model (cached by path and mtime), readies the sampler and samples every panel,
        off the UI thread."""
        weights = checkpoint_file(request.checkpoint)
        model = self._load(weights)
        labels = request.labels_for(model.config.num_classes)
        # As cfg-tui sample: refused, with the estimate, if a panel's images would not fit in memory.
        check_sampling_memory(model.config, len(labels) * request.per_class, model_device(model).type)
        sampler, grid = self._ready(request, model, weights)
        panels = []
        for i, w in enumerate(request.scales):
            panel = self._panel(model, request, sampler, grid, labels, w, done=i * sampler.steps)
            if panel is None:
                self.post_message(SampleStatus(CANCELLED))
                return  # cancelled (esc, or a newer request)
            panels.append(panel)
        images, pixels, frames, nfe = (list(part) for part in zip(*panels, strict=True))
        result = SampleResult(
            request, labels, model.config.null_label, images, pixels, frames, sampler.describe(), nfe
        )
        self.post_message(SamplesReady(result))

    def _ready(self, request: SampleRequest, model: UNet, weights: Path) -> tuple[Sampler, torch.Tensor]:
        """The sampler with auto's guide model loaded, and its time grid (a fitted grid is read from
        beside the weights, or fitted once and stored there: its lines go to the status line)."""
        device = model_device(model)
        (sampler,) = with_guide_models([request.sampler], weights, device)
        grid = resolve_grid(sampler, model, weights, log=lambda line: self.post_message(SampleStatus(line)))
        if sampler.grid == "fitted":
            self.post_message(SampleStatus(generating_text(request)))
        return sampler, grid

    def _panel(
        self,
        model: UNet,
        request: SampleRequest,
        sampler: Sampler,
        grid: torch.Tensor,
        rows: tuple[int, ...],
        w: float,
        done: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
        """One guidance scale: float32 images, uint8 pixels, trajectory frames and the counted NFE
        per image; None if cancelled."""
        worker = get_current_worker()
        labels = torch.tensor(rows).repeat_interleave(request.per_class)
        trajectory = Trajectory(sampler.steps, every=max(1, sampler.steps // TRAJECTORY_FRAMES))
        total = len(request.scales) * sampler.steps

        def callback(step: int, t: torch.Tensor, x: torch.Tensor) -> None:
            trajectory(step, t, x)
            self._report(done + step, total)
            if worker.is_cancelled:
                raise InterruptedError

        calls = Calls()
        try:
            x = sample_images(
                model, labels, w, sampler, grid, seed=request.seed, callback=callback, calls=calls
            )
        except InterruptedError:
            return None
        pixels = to_uint8(x)[..., 0]
        frames = to_uint8(trajectory.frames.flatten(0, 1))[..., 0].reshape(-1, *pixels.shape)
        return x.clamp(-1, 1).float().cpu().numpy(), pixels, frames, calls.nfe

    def _load(self, path: Path) -> UNet:
        """The model of ``path``, cached by path and mtime (a run's checkpoint is rewritten as it trains)."""
        mtime = path.stat().st_mtime if path.exists() else 0.0
        with self._model_lock:
            if self._model is None or self._model[:2] != (path, mtime):
                model, _ = load_checkpoint(path)
                self._model = (path, mtime, model)
            return self._model[2]

    @work(thread=True, group="preload", name="Loading the model", exit_on_error=False)
    def _preload(self, checkpoint: Path) -> None:
        """Load the start checkpoint while the user looks at the form, so the first ctrl+g is quick;
        the status line says so. A bad checkpoint is reported when generating, not here."""
        self.post_message(ModelStatus(f"loading the model {checkpoint}…"))
        try:
            model = self._load(checkpoint_file(checkpoint))
        except (OSError, ValueError):
            self.post_message(ModelStatus(""))
            return
        classes = model.config.num_classes
        self.post_message(ModelStatus(f"ready: {checkpoint} ({classes} classes) · ctrl+g generates"))

    def _report(self, done: int, total: int) -> None:
        """Progress from the worker, throttled to a few updates a second."""
        now = time.perf_counter()
        if now - self._last_progress > 0.2 or done == total:
            self._last_progress = now
            self.post_message(SampleProgress(done, total))

    def on_sample_progress(self, message: SampleProgress) -> None:
        self.query_one(ProgressBar).update(total=message.total, progress=message.done)
        progress = progress_text(message.done, message.total, time.perf_counter() - self._started)
        self._status(f"{self._generating} {progress}")

    def on_sample_status(self, message: SampleStatus) -> None:
        self._status(message.text)
        if message.text == CANCELLED:
            self._generating = ""
            self._progress(None)

    def on_model_status(self, message: ModelStatus) -> None:
        if not self._generating and self.result is None:
            self._status(message.text)

    def worker_failed(self, worker: Worker) -> None:
        self._generating = ""
        self._status("")
        self._progress(None)

    def on_samples_ready(self, message: SamplesReady) -> None:
        self._generating = ""
        self._progress(None)
        elapsed = time.perf_counter() - self._started
        self.result = result = message.result
        rows = row_names(result.labels, result.null_label)
        panels = [
            GridPanel(guidance_title(w), pixels, frames)
            for w, pixels, frames in zip(result.request.scales, result.pixels, result.frames, strict=True)
        ]
        self.query_one(ImageGrid).show(panels, rows, result.request.per_class)
        count = sum(len(i) for i in result.images)
        nfe = nfe_text(result.request.scales, result.nfe)
        self._summary = f"{count} images in {format_duration(elapsed)} · {result.sampler} · {nfe}"
        self.call_after_refresh(self._hint_paging)

    def _progress(self, total: int | None) -> None:
        """Show the progress bar from 0 of ``total`` steps, or hide it (None): the grid gets its line."""
        bar = self.query_one(ProgressBar)
        bar.display = total is not None
        bar.update(total=total or 1, progress=0)

    def on_image_grid_resized(self, _: ImageGrid.Resized) -> None:
        self._hint_paging()

    def _hint_paging(self) -> None:
        """The last generation's summary, and the keys that show the rest when the grid does not
        show everything (said again whenever the grid's size or zoom changes)."""
        grid = self.query_one(ImageGrid)
        if self._generating or not self._summary:
            return
        keys = []
        if len(grid.visible_rows()) < len(grid.row_labels):
            keys.append("pgdn")
        if len(grid.visible_cols()) < grid.per_row or len(grid.visible_panels()) < len(grid.panels):
            keys.append("→")
        more = f" · more: {', '.join(keys)}, − smaller, f9 full screen" if keys and grid.tile else ""
        self._status(self._summary + more)

    def action_play(self) -> None:
        grid = self.query_one(ImageGrid)
        if not grid.panels:
            self.notify("Generate first (ctrl+g).", severity="warning")
            return
        grid.frame = 0
        self.player.resume()

    def _next_frame(self) -> None:
        grid = self.query_one(ImageGrid)
        frames = grid.panels[grid.panel_index].frames if grid.panels else None
        if frames is None or grid.frame is None or grid.frame + 1 >= len(frames):
            grid.frame = None
            self.player.pause()
            return
        grid.frame += 1

    def action_export(self) -> None:
        if self.result is None:
            self.notify("Nothing to export yet: generate first (ctrl+g).", severity="warning")
            return
        default = Path.cwd() / f"cfg-tui-samples-{time.strftime('%Y%m%d-%H%M%S')}.png"
        self.app.push_screen(ExportScreen(default), self._export)

    def _export(self, choice: ExportChoice | None) -> None:
        if choice is None or self.result is None:
            return
        try:
            written = write_export(self.result, choice)
        except USER_ERRORS as e:  # the disk refused (full, gone, /proc), or the core refused the path
            reason = e.strerror if isinstance(e, OSError) and e.strerror else one_line(e)
            self.notify(f"cannot write {choice.png}: {reason}", title="Export failed", severity="error")
            return
        self.notify("wrote " + " and ".join(str(p) for p in written), title="Exported")

    def _status(self, text: str) -> None:
        self.query_one("#sample-status", Static).update(text)


CANCELLED = "cancelled: nothing generated (ctrl+g starts again)"


def progress_text(done: int, total: int, elapsed: float) -> str:
    """``12/18 steps · 67 % · ETA 4s · esc cancels`` (the ETA once a step has been timed)."""
    eta = f" · ETA {format_duration(elapsed / done * (total - done))}" if 0 < done < total else ""
    return f"{done}/{total} steps · {100 * done / max(total, 1):.0f} %{eta} · esc cancels"


def generating_text(request: SampleRequest) -> str:
    count = (len(request.digits) + request.null) * request.per_class * len(request.scales)
    return f"generating {count} images · {request.sampler.describe()}…"


def write_export(result: SampleResult, choice: ExportChoice) -> list[Path]:
    """The PNG of the lab's figure, and the .npz of the raw samples, both written atomically."""
    request = result.request
    rows = row_names(result.labels, result.null_label)
    scales = request.scales
    panels = [(guidance_title(w), torch.from_numpy(x)) for w, x in zip(scales, result.images, strict=True)]
    record = png_record(request.checkpoint, rows, scales, request.per_class, request.seed, request.sampler)
    written = [save_png(grid_figure(panels, rows), choice.png, record)]
    if choice.npz is not None:
        labels = np.repeat(np.asarray(result.labels), request.per_class)
        written.append(save_samples_npz(choice.npz, list(zip(scales, result.images, strict=True)), labels))
    return written
