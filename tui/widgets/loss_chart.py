"""A loss-versus-step chart drawn with braille dots, so it fits any terminal (80x24 over SSH included).

Loss falls over orders of magnitude early in training, so the y axis is logarithmic. Each logged
loss is a dim dot (the noise is information too) and an exponentially smoothed line is drawn
bright on top, so the trend reads at a glance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import pairwise

from rich.style import Style
from rich.text import Text
from textual.content import Content
from textual.widget import Widget

BRAILLE_BASE = 0x2800
# Dot bit of braille pixel (column 0..1, row 0..3) inside one character cell.
DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
SMOOTHING_SPAN = 20
"""The smoothed line averages over about 1/20 of the points: steady, yet not lagging on a short run."""
Y_LABEL_WIDTH = 7


def smoothing_weight(count: int) -> float:
    """Weight of the past for ``count`` points: none for a handful, at most 0.95 for long runs."""
    return min(0.95, max(0.0, 1 - SMOOTHING_SPAN / max(count, 1)))


def smooth(values: list[float], weight: float) -> list[float]:
    """Debiased exponential moving average: the start of the line is not dragged towards zero."""
    out: list[float] = []
    average = 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**i))
    return out


def format_loss(value: float) -> str:
    """A short axis label: 3 significant digits."""
    return f"{value:.3g}"


def format_step(step: float) -> str:
    """A short step label: 12k rather than 12000."""
    step = int(step)
    return f"{step / 1000:.3g}k" if step >= 10_000 else str(step)


class Canvas:
    """Braille dots in two layers (dim raw points, bright smoothed line) on a cell grid."""

    def __init__(self, columns: int, rows: int) -> None:
        self.columns, self.rows = columns, rows
        self.raw = [[0] * columns for _ in range(rows)]
        self.line = [[0] * columns for _ in range(rows)]

    @property
    def width(self) -> int:
        return self.columns * 2

    @property
    def height(self) -> int:
        return self.rows * 4

    def dot(self, x: int, y: int, bright: bool) -> None:
        """Set pixel (x, y), y counted from the top; pixels outside the canvas are ignored."""
        if 0 <= x < self.width and 0 <= y < self.height:
            layer = self.line if bright else self.raw
            layer[y // 4][x // 2] |= DOT_BITS[x % 2][y % 4]

    def vertical(self, x: int, y0: int, y1: int, bright: bool = True) -> None:
        """A vertical run of dots, so that steep stretches of a line stay connected."""
        for y in range(min(y0, y1), max(y0, y1) + 1):
            self.dot(x, y, bright=bright)

    def row_text(self, row: int, points: Style, line: Style) -> Text:
        """One row of cells: a cell with any bright dot is bright (the line wins over the points)."""
        text = Text()
        for raw_bits, line_bits in zip(self.raw[row], self.line[row], strict=True):
            bits = raw_bits | line_bits
            text.append(chr(BRAILLE_BASE + bits) if bits else " ", style=line if line_bits else points)
        return text


def step_ruler(columns: int, first: int, last: int) -> str:
    """First step on the left, last on the right; only the last one when the plot is narrow."""
    left, right = format_step(first), f"step {format_step(last)}"
    if first == last or len(left) + len(right) + 1 > columns:
        return format_step(last).rjust(columns)[:columns]
    return left + right.rjust(columns - len(left))


def fitting(labels: Sequence[str], room: int) -> str:
    """The first of ``labels`` (longest first, content markup) that fits ``room`` cells; else the last."""
    for label in labels:
        if Content.from_markup(label).cell_length <= room:
            return label
    return labels[-1]


def log_ranges(steps: list[int], logs: list[float]) -> tuple[int, int, float, float]:
    """The x range (never empty) and the y range of a log-scale plot; a flat line gets ± 0.5 decade."""
    x0, x1 = steps[0], max(steps[-1], steps[0] + 1)
    low, high = min(logs), max(logs)
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    return x0, x1, low, high


def plot_line(canvas: Canvas, xs: list[int], ys: list[int], bright: bool = True) -> None:
    """A line through every point (pixels), straight between neighbours, with no gaps."""
    previous = ys[0]
    for (xa, ya), (xb, yb) in pairwise(zip(xs, ys, strict=True)):
        for x in range(xa, xb + 1):
            y = round(ya + (yb - ya) * (x - xa) / (xb - xa)) if xb > xa else yb
            canvas.vertical(x, previous, y, bright)
            previous = y


class LossChart(Widget):
    """Loss per logged step, log-scale y; call :meth:`add` with new records, :meth:`clear` on a new run."""

    COMPONENT_CLASSES = {"loss-chart--points", "loss-chart--line", "loss-chart--axis"}
    DEFAULT_CSS = """
    LossChart {
        height: 1fr;
        min-height: 4;
        & > .loss-chart--points { color: $foreground 45%; }
        & > .loss-chart--line { color: $accent; text-style: bold; }
        & > .loss-chart--axis { color: $text-muted; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.points: list[tuple[int, float]] = []

    def add(self, records: Iterable[dict]) -> None:
        """Append the (step, loss) of each record with a finite, positive loss; redraw if any."""
        before = len(self.points)
        for record in records:
            loss = record.get("loss")
            if isinstance(loss, int | float) and math.isfinite(loss) and loss > 0:
                self.points.append((int(record.get("step", 0)), float(loss)))
        if len(self.points) != before:
            self.refresh()

    def clear(self) -> None:
        """Forget every point (another run is followed, or its metrics were rewritten)."""
        self.points = []
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size
        return self.render_text(width, height)

    def render_text(self, width: int, height: int) -> Text:
        """The chart in ``width`` x ``height`` cells (one logged value is a dot); too small for a
        plot, one line of text."""
        if self.points and width >= Y_LABEL_WIDTH + 4 and height >= 2:
            return self._draw(width, height)
        if not self.points:
            line = Text("waiting for loss values…", style=self._style("axis"))
        else:
            line = Text(f"loss {format_loss(self.points[-1][1])}", style=self._style("line"))
        line.truncate(max(width, 0))
        return line

    def _draw(self, width: int, height: int) -> Text:
        """Axis labels on the left and below, the braille plot in the remaining cells."""
        canvas = Canvas(width - Y_LABEL_WIDTH, height - 1)
        steps = [step for step, _ in self.points]
        logs = [math.log10(loss) for _, loss in self.points]
        smoothed = [
            math.log10(v)
            for v in smooth([loss for _, loss in self.points], smoothing_weight(len(self.points)))
        ]
        x0, x1, y0, y1 = log_ranges(steps, logs)

        def px(step: int) -> int:
            return round((step - x0) / (x1 - x0) * (canvas.width - 1))

        def py(log_loss: float) -> int:
            return round((y1 - log_loss) / (y1 - y0) * (canvas.height - 1))

        for step, value in zip(steps, logs, strict=True):
            canvas.dot(px(step), py(value), bright=False)
        plot_line(canvas, [px(s) for s in steps], [py(v) for v in smoothed])
        return self._frame(canvas, 10**y0, 10**y1, steps[0], steps[-1])

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"loss-chart--{name}")

    def _frame(self, canvas: Canvas, low: float, high: float, first: int, last: int) -> Text:
        """Y labels every few rows (log-spaced values), the first and last logged steps below."""
        labels = {}
        bottom = canvas.rows - 1
        every = max(3, canvas.rows // 4)
        for row in sorted({0, bottom, *range(every, bottom - every // 2, every)}):
            # The value at the middle of the row's cell, on the log scale the dots use.
            fraction = min(1.0, (row * 4 + 1.5) / max(canvas.height - 1, 1))
            labels[row] = format_loss(high * (low / high) ** fraction)
        axis, points, line = self._style("axis"), self._style("points"), self._style("line")
        lines = []
        for row in range(canvas.rows):
            label = labels.get(row, "").rjust(Y_LABEL_WIDTH - 1)[: Y_LABEL_WIDTH - 1]
            lines.append(Text(label + "│", style=axis) + canvas.row_text(row, points, line))
        lines.append(Text(" " * Y_LABEL_WIDTH + step_ruler(canvas.columns, first, last), style=axis))
        return Text("\n").join(lines)
