"""The Evaluate screen: run ``cfg-tui eval`` (or a small sweep) in a worker, see the table and a chart.
Several guidance methods, one row each per w, is how it compares methods."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Header, Input, Label, Select, Static
from textual.worker import Worker
from torch import Tensor

from core.assets import CLASSIFIER
from core.checkpoint import load_checkpoint
from core.choices import check_guidance, check_per_class, check_sampling_memory
from core.evaluation import load_yardstick, samplers, sweep
from core.grids import GRIDS
from core.guidance import Guidance, parse_guidance
from core.runs import checkpoint_file
from core.sampling import Sampler, resolve_grid, with_guide_models
from core.solvers import check_solver, check_steps
from core.unet import UNet
from tui.defaults import GUIDANCE, PER_CLASS_LABEL
from tui.format import EVAL_COLUMNS, eval_cells, with_spread
from tui.parse import parse_floats, parse_int, parse_ints
from tui.screens.base import AppScreen, existing_path
from tui.widgets.footer import FittedFooter
from tui.widgets.form import action_button, choose, field

MODES = ("eval", "sweep")
PATH_FIELDS = ("checkpoint", "classifier")


def parse_methods(text: str) -> tuple[Guidance, ...]:
    """Guidance methods separated by spaces, each as ``cfg-tui eval --guide`` takes it
    (``cfg interval apg:eta=0,momentum=-0.5``); a method given twice counts once."""
    methods = []
    for spec in text.split():
        try:
            methods.append(parse_guidance(spec))
        except ValueError as e:
            raise ValueError(f"methods: {e}") from None
    if not methods:
        raise ValueError("methods: name at least one, e.g. cfg interval")
    return tuple(dict.fromkeys(methods))


@dataclass(frozen=True)
class EvalRequest:
    checkpoint: Path
    classifier: Path
    scales: tuple[float, ...]
    cells: tuple[Sampler, ...]  # every method × solver × steps on the grid; auto's guide loaded later
    per_class: int


@dataclass
class RowReady(Message):
    row: dict


@dataclass
class EvalDone(Message):
    pass


@dataclass
class EvalStatus(Message):
    """A line from the worker for the status line (fitting a time grid takes a while)."""

    text: str


def running_text(request: EvalRequest) -> str:
    cells = len(request.scales) * len(request.cells)
    return f"running {cells} cell{'s' * (cells > 1)} of {10 * request.per_class} samples…"


def bar_chart(rows: list[dict], width: int) -> Text:
    """Fréchet distance (lower is better; ± its spread, n beside it) and accuracy of each row as bars."""
    text = Text()
    worst = max((r["frechet"] or 0.0) for r in rows) or 1.0
    # Names differ by their ends (the method, the grid): keep them whole up to half the width.
    label = min(max(len(r["name"]) for r in rows), max(width // 2, 16))
    room = max(width - label - 24, 4)
    for row in rows:
        frechet, acc = row["frechet"] or 0.0, row["accuracy"]
        text.append(f"{row['name'][:label]:>{label}} ")
        text.append("█" * max(1, round(room * frechet / worst)), style="red")
        text.append(f" {with_spread(row['frechet'], row['frechet_spread'], 1)} n={row['n']}\n")
        text.append(" " * (label + 1))
        text.append("█" * max(1, round(room * acc)), style="green")
        text.append(f" {100 * acc:.1f}%\n")
    return text


class EvaluateScreen(AppScreen):
    """Quality numbers for a checkpoint; generation and the classifier run in a thread worker."""

    PALETTE = [("Run evaluation", "Measure the checkpoint's samples, per w and method (ctrl+g)", "run")]
    BINDINGS = [
        Binding(
            "ctrl+g",
            "run",
            "Run",
            priority=True,
            tooltip="run eval (one row per w × method) or a sweep (every w × method × solver × steps)",
        ),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="eval-form"):
                yield field("mode", choose(MODES, "eval", "eval-mode")).add_class("gap")
                yield field("guidance", Input(GUIDANCE, id="eval-guidance", compact=True))
                methods = Input("cfg", id="eval-methods", compact=True)
                methods.tooltip = "guidance methods separated by spaces, e.g. cfg interval apg:eta=0"
                yield field("methods", methods)
                yield field("solvers", Input("euler", id="eval-solvers", compact=True))
                yield field("steps", Input("99", id="eval-steps", compact=True))
                yield field("grid", choose(GRIDS, "uniform", "eval-grid"))
                yield field(PER_CLASS_LABEL, Input("50", id="eval-per-class", compact=True))
                yield Label("checkpoint", classes="form-label")
                yield Input(str(self.settings.checkpoint), id="eval-checkpoint", compact=True)
                yield Label("classifier", classes="form-label")
                yield Input(str(CLASSIFIER), id="eval-classifier", compact=True)
                yield action_button("Run", "ctrl+g", "run", id="eval-run")
                yield Static("", id="eval-status")
            with Vertical(id="eval-view"):
                yield DataTable(id="eval-table", classes="pane", cursor_type="row", zebra_stripes=True)
                yield Static("", id="eval-chart")
        yield FittedFooter()

    def on_mount(self) -> None:
        self.sub_title = "Evaluate"
        self.rows: list[dict] = []
        table = self.query_one(DataTable)
        table.add_columns(*EVAL_COLUMNS)
        table.border_title = "results"

    def action_run(self) -> None:
        request = self.checked(self._request, "Cannot evaluate")
        if request is None:
            return
        self.rows = []
        self.query_one(DataTable).clear()
        self.query_one("#eval-chart", Static).update("")
        self._status(running_text(request))
        self._evaluate(request)

    def _value(self, id_: str) -> str:
        return self.query_one(f"#{id_}", Input).value.strip()

    def _request(self) -> EvalRequest:
        sweep = self.query_one("#eval-mode", Select).value == "sweep"
        solvers = tuple(check_solver(s.strip()) for s in self._value("eval-solvers").split(","))
        steps = tuple(check_steps(n) for n in parse_ints("steps", self._value("eval-steps")))
        if not sweep and (len(solvers) > 1 or len(steps) > 1):
            raise ValueError("eval takes one solver and one step count; choose sweep for several")
        methods = parse_methods(self._value("eval-methods"))
        grid = str(self.query_one("#eval-grid", Select).value)
        paths = {name: existing_path(name, self._value(f"eval-{name}")) for name in PATH_FIELDS}
        return EvalRequest(
            checkpoint=paths["checkpoint"],
            classifier=paths["classifier"],
            scales=check_guidance(parse_floats("guidance", self._value("eval-guidance"))),
            cells=tuple(samplers(solvers, steps, methods, (grid,))),
            per_class=check_per_class(parse_int(PER_CLASS_LABEL, self._value("eval-per-class"), 2), 2),
        )

    @work(thread=True, exclusive=True, group="evaluate", name="Evaluate", exit_on_error=False)
    def _evaluate(self, request: EvalRequest) -> None:
        model, cells, grid_of = self._model_and_cells(request)
        classifier, reference = load_yardstick(request.classifier, "cpu", self.settings.data_root)
        post = lambda row: self.post_message(RowReady(row))  # noqa: E731
        r = request
        sweep(model, classifier, reference, r.scales, cells, r.per_class, on_row=post, grid_of=grid_of)
        self.post_message(EvalDone())

    def _model_and_cells(
        self, request: EvalRequest
    ) -> tuple[UNet, list[Sampler], Callable[[Sampler], Tensor]]:
        """The model, the cells with auto's guide model loaded, and their grids, as ``cfg-tui eval``
        has them: a fitted grid is read from beside the weights, or fitted once and stored there
        (its lines go to the status line until the cells run)."""
        weights = checkpoint_file(request.checkpoint)
        model, _ = load_checkpoint(weights)
        device = next(model.parameters()).device
        # As cfg-tui eval: refused, with the estimate, if a cell's samples would not fit in memory.
        check_sampling_memory(model.config, request.per_class * model.config.num_classes, device.type)
        cells = with_guide_models(request.cells, weights, device)
        log = lambda line: self.post_message(EvalStatus(line))  # noqa: E731
        grids = {cell: resolve_grid(cell, model, weights, log=log) for cell in dict.fromkeys(cells)}
        self.post_message(EvalStatus(running_text(request)))
        return model, cells, grids.__getitem__

    def on_row_ready(self, message: RowReady) -> None:
        row = message.row
        self.rows.append(row)
        self.query_one(DataTable).add_row(*eval_cells(row))
        chart = self.query_one("#eval-chart", Static)
        chart.update(bar_chart(self.rows, chart.size.width or 60))

    def on_eval_status(self, message: EvalStatus) -> None:
        self._status(message.text)

    def on_eval_done(self, message: EvalDone) -> None:
        self._status(f"{len(self.rows)} rows · red: Fréchet distance (lower is better) · green: accuracy")

    def worker_failed(self, worker: Worker) -> None:
        self._status("")

    def _status(self, text: str) -> None:
        self.query_one("#eval-status", Static).update(text)
