"""Several runs' curves overlaid in one braille chart, to choose a recipe by comparing runs.

The loss (each run smoothed as the loss chart smooths it) or the quick evaluations' Fréchet distance
(straight lines between evaluations), on a log y axis, against step or wall time, one colour per run
with a legend line above the plot. A braille cell has one colour: where two runs' lines share a cell,
the later run's colour wins (the runs are drawn in their legend's order).

The points come from :func:`core.compare.series_of`, the same as ``cfg-tui runs --compare --chart``
draws, so the app and the PNG agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from core.compare import check_axis, check_kind, series_of
from tui.format import format_duration
from tui.widgets.loss_chart import (
    BRAILLE_BASE,
    Y_LABEL_WIDTH,
    Canvas,
    format_loss,
    log_ranges,
    plot_line,
    smooth,
    smoothing_weight,
    step_ruler,
)
from tui.widgets.quality_chart import compact

PALETTE = ("#5fafff", "#ffaf5f", "#87d75f", "#ff5f5f", "#d7afff", "#5fd7d7")
"""One colour per run, legible on a dark ground and distinct from one another: blue, orange, green,
red, lilac, cyan, in the order of the PNG's (core.compare.PNG_COLOURS); a seventh run takes the first
again. All are xterm-256 colours, so a 256-colour terminal shows them as they are."""
MARK = "■"
TITLES = {"loss": "loss (log)", "quality": "FD (log)"}
EMPTY = {"loss": "no loss values in these runs yet", "quality": "no quality evaluations in these runs"}
NAME_CUTS = (None, 12, 6, 3, 0)
"""The legend's names at full length, then cut to these many characters (0: the marks alone)."""

Points = list[tuple[float, float]]


class Box(NamedTuple):
    """What the plot shows: x from x0 to x1, log10(y) from low to high."""

    x0: float
    x1: float
    low: float
    high: float


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def cut(name: str, length: int | None) -> str:
    """``name``, or its first ``length - 1`` characters and an ellipsis when it is longer."""
    if length is None or len(name) <= length:
        return name
    return name[: length - 1] + "…" if length > 1 else name[:length]


def legend_forms(names: Sequence[str], title: str) -> list[Text]:
    """The legend, longest first: the title and ``■ name`` per run, then without the title, then with
    the names cut shorter and shorter; each mark and name in its run's colour."""
    forms = []
    for length in NAME_CUTS:
        text = Text()
        for i, name in enumerate(names):
            short = cut(name, length)
            text.append(("  " if short else " ") if i else "")
            text.append(f"{MARK} {short}" if short else MARK, style=Style(color=colour(i), bold=True))
        forms.append(text)
    return [Text(f"{title} · ") + forms[0], *forms]


def fitting_text(forms: Sequence[Text], width: int) -> Text:
    """The first of ``forms`` no wider than ``width`` cells; else the last, cut to ``width``."""
    for form in forms:
        if form.cell_len <= width:
            return form
    last = forms[-1].copy()
    last.truncate(max(width, 0))
    return last


def time_ruler(columns: int, first: float, last: float) -> str:
    """Like :func:`step_ruler`, in wall time: ``0s`` on the left, ``time 5m22s`` on the right."""
    left, right = format_duration(first), f"time {format_duration(last)}"
    if len(left) + len(right) + 1 > columns:
        return format_duration(last).rjust(columns)[:columns]
    return left + right.rjust(columns - len(left))


class CompareChart(Widget):
    """Runs' loss or FD (:attr:`kind`) against step or wall time (:attr:`x_axis`), overlaid; call
    :meth:`set_runs` with each run's name and metrics records, :meth:`toggle_x` to switch the x axis."""

    COMPONENT_CLASSES = {"compare-chart--axis"}
    DEFAULT_CSS = """
    CompareChart {
        height: 1fr;
        min-height: 4;
        & > .compare-chart--axis { color: $text-muted; }
    }
    """

    x_axis: reactive[str] = reactive("step")
    """``step`` or ``time`` (the records' elapsed seconds)."""
    kind: reactive[str] = reactive("loss")
    """``loss`` or ``quality`` (the quick evaluations' Fréchet distance)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.runs: list[tuple[str, list[dict]]] = []
        self._series: dict[tuple[str, str], list[Points]] = {}  # by (x_axis, kind): one list per run

    def validate_x_axis(self, x: str) -> str:
        return check_axis(x)

    def validate_kind(self, kind: str) -> str:
        return check_kind(kind)

    def set_runs(self, runs: Sequence[tuple[str, Sequence[dict]]]) -> None:
        """Show these runs (name, metrics records of both kinds), in this order and colours."""
        self.runs = [(name, list(records)) for name, records in runs]
        self._series = {}
        self.refresh()

    def toggle_x(self) -> str:
        """Switch the x axis between step and wall time; returns the new one."""
        self.x_axis = "time" if self.x_axis == "step" else "step"
        return self.x_axis

    def toggle_kind(self) -> str:
        """Switch between the loss and the quality curves; returns the new kind."""
        self.kind = "quality" if self.kind == "loss" else "loss"
        return self.kind

    def series(self) -> list[Points]:
        """Each run's (x, y) points for the current axis and kind (computed once per set of runs)."""
        key = (self.x_axis, self.kind)
        if key not in self._series:
            self._series[key] = [series_of(records, self.x_axis, self.kind) for _, records in self.runs]
        return self._series[key]

    def render(self) -> Text:
        width, height = self.content_size
        return self.render_text(width, height)

    def render_text(self, width: int, height: int) -> Text:
        """The legend line, then the plot with its axes; one line of text when there is nothing to
        plot, only the legend when there is no room for a plot."""
        axis = self.get_component_rich_style("compare-chart--axis")
        if not self.runs or not any(self.series()):
            line = Text("no runs to compare" if not self.runs else EMPTY[self.kind], style=axis)
            line.truncate(max(width, 0))
            return line
        legend = fitting_text(legend_forms([name for name, _ in self.runs], TITLES[self.kind]), width)
        if width < Y_LABEL_WIDTH + 4 or height < 3:
            return legend
        return Text("\n").join([legend, self._plot(width, height - 1, axis)])

    def _plot(self, width: int, height: int, axis: Style) -> Text:
        """Y labels on the left, the runs' lines, the x ruler below: ``width`` x ``height`` cells."""
        columns, rows = width - Y_LABEL_WIDTH, height - 1
        runs = self.series()
        xs = [x for points in runs for x, _ in points]
        logs = [math.log10(y) for points in runs for _, y in points]
        box = Box(*log_ranges([min([0.0, *xs]), max(xs)], logs))  # runs compared from their start
        canvases = [self._canvas(points, Canvas(columns, rows), box) for points in runs]
        label = format_loss if self.kind == "loss" else compact
        styles = [Style(color=colour(i), bold=True) for i in range(len(canvases))]
        lines = [
            Text(y_label(row, rows, box, label).rjust(Y_LABEL_WIDTH - 1) + "│", style=axis)
            + merged_row(canvases, row, styles)
            for row in range(rows)
        ]
        lines.append(Text(" " * Y_LABEL_WIDTH + self.ruler(columns, box), style=axis))
        return Text("\n").join(lines)

    def ruler(self, columns: int, box: Box) -> str:
        """The x axis's first and last values under the plot, in steps or in wall time."""
        if self.x_axis == "step":
            return step_ruler(columns, round(box.x0), round(box.x1))
        return time_ruler(columns, box.x0, box.x1)

    def _canvas(self, points: Points, canvas: Canvas, box: Box) -> Canvas:
        """One run's line on a canvas of its own: x0..x1 across, log10 y from high (top) to low."""
        x0, x1, low, high = box
        if not points:
            return canvas
        ys = [y for _, y in points]
        if self.kind == "loss":
            ys = smooth(ys, smoothing_weight(len(ys)))
        px = [round((x - x0) / (x1 - x0) * (canvas.width - 1)) for x, _ in points]
        py = [round((high - math.log10(y)) / (high - low) * (canvas.height - 1)) for y in ys]
        for x, y in zip(px, py, strict=True):
            canvas.dot(x, y, bright=True)  # a run of one point shows, and evaluations stand out
        plot_line(canvas, px, py)
        return canvas


def y_label(row: int, rows: int, box: Box, label: Callable[[float], str]) -> str:
    """On the first, the last and every few rows between, the value at the middle of the row's cell
    (on the log scale of the dots: 10^(high - f (high - low)), f the cell's middle as a fraction of
    the height); else nothing."""
    every = max(2, rows // 3)
    if row not in {0, rows - 1, *range(every, rows - 1 - every // 2, every)}:
        return ""
    fraction = min(1.0, (row * 4 + 1.5) / max(rows * 4 - 1, 1))
    return label(10 ** (box.high - fraction * (box.high - box.low)))[: Y_LABEL_WIDTH - 1]


def merged_row(canvases: Sequence[Canvas], row: int, styles: Sequence[Style]) -> Text:
    """One row of cells of every canvas: the union of their dots, in the style of the last canvas
    (run) with a dot in the cell."""
    text = Text()
    for column in range(canvases[0].columns):
        bits, owner = 0, None
        for style, canvas in zip(styles, canvases, strict=True):
            if canvas.line[row][column]:
                bits |= canvas.line[row][column]
                owner = style
        text.append(chr(BRAILLE_BASE + bits) if bits else " ", style=owner or "")
    return text
