"""The Evaluate screen: run ``cfg-tui eval`` (or a small sweep) in a worker, see the table and a chart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input, Label, Select, Static
from textual.worker import Worker

from core.assets import CLASSIFIER
from core.solvers import check_solver, check_steps
from tui.format import EVAL_COLUMNS, eval_cells, with_spread
from tui.parse import parse_floats, parse_int, parse_ints
from tui.screens.base import AppScreen
from tui.widgets.form import action_button, field

MODES = ("eval", "sweep")


@dataclass(frozen=True)
class EvalRequest:
    checkpoint: Path
    classifier: Path
    scales: tuple[float, ...]
    solvers: tuple[str, ...]
    steps: tuple[int, ...]
    per_class: int


@dataclass
class RowReady(Message):
    row: dict


@dataclass
class EvalDone(Message):
    pass


def bar_chart(rows: list[dict], width: int) -> Text:
    """Fréchet distance (lower is better; ± its spread, n beside it) and accuracy of each row as bars."""
    text = Text()
    worst = max((r["frechet"] or 0.0) for r in rows) or 1.0
    room = max(width - 40, 4)
    for row in rows:
        frechet, acc = row["frechet"] or 0.0, row["accuracy"]
        text.append(f"{row['name'][:16]:>16} ")
        text.append("█" * max(1, round(room * frechet / worst)), style="red")
        text.append(f" {with_spread(row['frechet'], row['frechet_spread'], 1)} n={row['n']}\n")
        text.append(" " * 17)
        text.append("█" * max(1, round(room * acc)), style="green")
        text.append(f" {100 * acc:.1f}%\n")
    return text


class EvaluateScreen(AppScreen):
    """Quality numbers for a checkpoint; generation and the classifier run in a thread worker."""

    PALETTE = [("Run evaluation", "Measure the checkpoint's samples (ctrl+g)", "run")]
    BINDINGS = [
        Binding(
            "ctrl+g",
            "run",
            "Run",
            priority=True,
            tooltip="run eval (one row per w) or a sweep (every w × solver × steps)",
        ),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="eval-form"):
                yield field("mode", Select([(m, m) for m in MODES], value="eval", allow_blank=False,
                                           id="eval-mode", compact=True))  # fmt: skip
                yield field("guidance", Input("1,3,5", id="eval-guidance", compact=True))
                yield field("solvers", Input("euler", id="eval-solvers", compact=True))
                yield field("steps", Input("99", id="eval-steps", compact=True))
                yield field("per digit", Input("50", id="eval-per-class", compact=True))
                yield Label("checkpoint", classes="form-label")
                yield Input(str(self.settings.checkpoint), id="eval-checkpoint", compact=True)
                yield Label("classifier", classes="form-label")
                yield Input(str(CLASSIFIER), id="eval-classifier", compact=True)
                yield action_button("Run", "ctrl+g", "run", id="eval-run")
                yield Static("", id="eval-status")
            with Vertical(id="eval-view"):
                yield DataTable(id="eval-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="eval-chart")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Evaluate"
        self.rows: list[dict] = []
        self.query_one(DataTable).add_columns(*EVAL_COLUMNS)

    def action_run(self) -> None:
        request = self.checked(self._request, "Cannot evaluate")
        if request is None:
            return
        self.rows = []
        self.query_one(DataTable).clear()
        self.query_one("#eval-chart", Static).update("")
        cells = len(request.scales) * len(request.solvers) * len(request.steps)
        self._status(f"running {cells} cell{'s' * (cells > 1)} of {10 * request.per_class} samples…")
        self._evaluate(request)

    def _value(self, id_: str) -> str:
        return self.query_one(f"#{id_}", Input).value.strip()

    def _request(self) -> EvalRequest:
        sweep = self.query_one("#eval-mode", Select).value == "sweep"
        solvers = tuple(check_solver(s.strip()) for s in self._value("eval-solvers").split(","))
        steps = tuple(check_steps(n) for n in parse_ints("steps", self._value("eval-steps")))
        if not sweep and (len(solvers) > 1 or len(steps) > 1):
            raise ValueError("eval takes one solver and one step count; choose sweep for several")
        paths = {
            name: Path(self._value(f"eval-{name}")).expanduser() for name in ("checkpoint", "classifier")
        }
        for name, path in paths.items():
            if not path.exists():
                raise ValueError(f"{name}: {path} does not exist")
        return EvalRequest(
            checkpoint=paths["checkpoint"],
            classifier=paths["classifier"],
            scales=parse_floats("guidance", self._value("eval-guidance")),
            solvers=solvers,
            steps=steps,
            per_class=parse_int("per digit", self._value("eval-per-class"), 2),
        )

    @work(thread=True, exclusive=True, group="evaluate", name="Evaluate", exit_on_error=False)
    def _evaluate(self, request: EvalRequest) -> None:
        from core.checkpoint import load_checkpoint
        from core.evaluation import load_yardstick, samplers, sweep
        from core.runs import checkpoint_file

        model, _ = load_checkpoint(checkpoint_file(request.checkpoint))
        classifier, reference = load_yardstick(request.classifier, "cpu", self.settings.data_root)
        post = lambda row: self.post_message(RowReady(row))  # noqa: E731
        r = request
        cells = samplers(r.solvers, r.steps)
        sweep(model, classifier, reference, r.scales, cells, r.per_class, on_row=post)
        self.post_message(EvalDone())

    def on_row_ready(self, message: RowReady) -> None:
        row = message.row
        self.rows.append(row)
        self.query_one(DataTable).add_row(*eval_cells(row))
        chart = self.query_one("#eval-chart", Static)
        chart.update(bar_chart(self.rows, chart.size.width or 60))

    def on_eval_done(self, message: EvalDone) -> None:
        self._status(f"{len(self.rows)} rows · red: Fréchet distance (lower is better) · green: accuracy")

    def worker_failed(self, worker: Worker) -> None:
        self._status("")

    def _status(self, text: str) -> None:
        self.query_one("#eval-status", Static).update(text)
