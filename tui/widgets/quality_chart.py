"""Quality during training against step, in braille dots like the loss chart: the Fréchet distance
of the quick evaluations (``core.quick_eval``) on a log scale, labelled on the left, and their
accuracy on a fixed 0–1 scale, labelled on the right.

FD falls over orders of magnitude while a run learns, as the loss does, hence the log scale;
accuracy keeps its absolute scale so that "0.97" reads the same on every run. A run makes a
handful of evaluations, so the points are joined by straight lines rather than smoothed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widget import Widget

from core.runs import is_quality
from tui.format import number, with_spread
from tui.widgets.loss_chart import Canvas, fitting, log_ranges, plot_line, step_ruler

LEFT_LABELS = 7
RIGHT_LABELS = 5
EMPTY_TEXT = "no quality evaluations yet"
TITLES = (
    "[$accent]FD[/] (log, left) · [$success]accuracy[/] (right)",
    "[$accent]FD[/] (log) · [$success]accuracy[/]",
    "[$accent]FD[/] · [$success]accuracy[/]",
)
"""The border title, longest first: the longest that fits is shown (an ellipsis cut "· fr")."""


@dataclass(frozen=True)
class QualityPoint:
    step: int
    frechet: float
    spread: float | None
    accuracy: float | None


def _finite(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def quality_point(record: dict) -> QualityPoint | None:
    """The point of a quality record with a finite, positive FD; None for any other record."""
    if not is_quality(record):
        return None
    q = record["quality"]
    frechet = _finite(q.get("frechet"))
    if frechet is None or frechet <= 0:
        return None
    return QualityPoint(int(record.get("step", 0)), frechet, _finite(q.get("frechet_spread")),
                        _finite(q.get("accuracy")))  # fmt: skip


def compact(value: float) -> str:
    """An axis label of at most 5 characters: 231, 4.36k, 1.2M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def summary(point: QualityPoint) -> str:
    """One evaluation in a line: step, FD ± spread, accuracy."""
    fd = with_spread(point.frechet, point.spread, 1)
    return f"step {point.step}: FD {fd}, accuracy {number(point.accuracy, 3)}"


def summaries(point: QualityPoint) -> tuple[str, ...]:
    """:func:`summary`, then shorter forms of it for narrow charts (the spread, then the step go)."""
    accuracy = number(point.accuracy, 3)
    return (
        summary(point),
        f"step {point.step}: FD {number(point.frechet, 1)}, accuracy {accuracy}",
        f"FD {number(point.frechet, 1)}, accuracy {accuracy}",
        f"FD {compact(point.frechet)} · acc {accuracy}",
    )


class QualityChart(Widget):
    """FD (log, left axis) and accuracy (0–1, right axis) per evaluation; :meth:`add` records of any
    kind (loss records are ignored), :meth:`clear` on a new run."""

    COMPONENT_CLASSES = {"quality-chart--frechet", "quality-chart--accuracy", "quality-chart--axis"}
    DEFAULT_CSS = """
    QualityChart {
        height: 1fr;
        min-height: 4;
        & > .quality-chart--frechet { color: $accent; text-style: bold; }
        & > .quality-chart--accuracy { color: $success; }
        & > .quality-chart--axis { color: $text-muted; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.points: list[QualityPoint] = []

    def on_mount(self) -> None:
        self._fit_labels()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_labels()

    def _fit_labels(self) -> None:
        """The longest title and summary of the latest point that fit the border: whole words, never
        an ellipsis."""
        room = self.size.width - 6  # the corners, and a line and a space each side
        self.border_title = fitting(TITLES, room)
        self.border_subtitle = fitting(summaries(self.points[-1]), room) if self.points else ""

    def add(self, records: Iterable[dict]) -> None:
        """Append the point of each quality record; redraw if any (the latest in the subtitle)."""
        new = [p for p in map(quality_point, records) if p is not None]
        if new:
            self.points.extend(new)
            self._fit_labels()
            self.refresh()

    def clear(self) -> None:
        """Forget every point (another run is followed, or its metrics were rewritten)."""
        self.points = []
        self._fit_labels()
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size
        return self.render_text(width, height)

    def render_text(self, width: int, height: int) -> Text:
        """The chart in ``width`` x ``height`` cells; with fewer than two points or too little room,
        one line of text."""
        if len(self.points) >= 2 and width >= LEFT_LABELS + RIGHT_LABELS + 4 and height >= 2:
            return self._draw(width, height)
        if not self.points:
            line = Text(EMPTY_TEXT, style=self._style("axis"))
        else:
            line = Text(summary(self.points[-1]), style=self._style("frechet"))
        line.truncate(max(width, 0))
        return line

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"quality-chart--{name}")

    def _draw(self, width: int, height: int) -> Text:
        canvas = Canvas(width - LEFT_LABELS - RIGHT_LABELS, height - 1)
        steps = [p.step for p in self.points]
        logs = [math.log10(p.frechet) for p in self.points]
        x0, x1, low, high = log_ranges(steps, logs)

        def px(step: int) -> int:
            return round((step - x0) / (x1 - x0) * (canvas.width - 1))

        def py(fraction: float) -> int:
            """A pixel row for a height in [0, 1] (0 at the bottom)."""
            return round((1 - fraction) * (canvas.height - 1))

        plot_line(canvas, [px(s) for s in steps], [py((v - low) / (high - low)) for v in logs])
        accuracies = [(px(p.step), py(p.accuracy)) for p in self.points if p.accuracy is not None]
        if accuracies:
            xs, ys = zip(*accuracies, strict=True)
            plot_line(canvas, list(xs), list(ys), bright=False)
        return self._frame(canvas, 10**low, 10**high, x0, x1)

    def _frame(self, canvas: Canvas, low: float, high: float, first: int, last: int) -> Text:
        """FD labels on the left (log-spaced), accuracy on the right, the steps below."""
        bottom = canvas.rows - 1
        every = max(2, canvas.rows // 3)
        rows = sorted({0, bottom, *range(every, bottom - every // 2, every)})
        axis, fd, accuracy = self._style("axis"), self._style("frechet"), self._style("accuracy")
        lines = []
        for row in range(canvas.rows):
            # The value at the middle of the row's cell, on the scale the dots use.
            fraction = 1 - min(1.0, (row * 4 + 1.5) / max(canvas.height - 1, 1))
            left = compact(low * (high / low) ** fraction) if row in rows else ""
            right = f"{fraction:.2f}" if row in rows else ""
            lines.append(
                Text(left.rjust(LEFT_LABELS - 1)[: LEFT_LABELS - 1] + "│", style=axis)
                + canvas.row_text(row, accuracy, fd)
                + Text("│" + right.ljust(RIGHT_LABELS - 1)[: RIGHT_LABELS - 1], style=axis)
            )
        ruler = " " * LEFT_LABELS + step_ruler(canvas.columns, first, last)
        lines.append(Text(ruler, style=axis))
        return Text("\n").join(lines)
