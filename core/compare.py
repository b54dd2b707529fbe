"""Runs side by side, to choose a recipe: one summary per run (what ``cfg-tui runs --compare``
prints), the points of its loss and quality curves, and all of them drawn in one PNG.

Everything here reads a run as it is, half-written or damaged: a record whose fields are not finite
numbers is skipped, never an error (``core.runs.parse_record`` skips a damaged line, and a value
that is not a finite number here is left out of the curve it would be a point of). Nothing here loads
torch, Textual or Rich; the PNG is drawn with Pillow alone (the command line starts in a fraction of a
second, and matplotlib is no dependency).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from core.images import save_png
from core.runs import MetricsTail, RunDir, RunError, loss_records, quality_records

FINAL_FRACTION = 0.05
FINAL_MIN = 5
"""The final loss is the mean of the last 5 % of the loss records, and of at least the last 5 (all of
them when fewer): one logged loss is one batch's, too noisy to rank runs by."""
X_AXES = ("step", "time")
KINDS = ("loss", "quality")
X_FIELDS = {"step": "step", "time": "elapsed"}
"""The record field each x axis reads: time is the run's wall time, ``elapsed`` seconds."""

PNG_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#17becf")
"""One colour per run on the PNG's white ground, in the order of the app's (blue, orange, green, red,
purple, cyan); a seventh run takes the first colour again."""
RAW_TINT = 0.65
"""How far towards white a run's raw loss line is drawn, under its smoothed line in full colour."""
SMOOTH_POINTS = 20
"""The PNG's smoothed loss averages each point with its neighbours over 1/20 of the run's points (the
app's live chart smooths over as many)."""
WIDTH = 960
MARGIN = (84, 24)  # left (y tick labels), right
LOSS_HEIGHT = 320
QUALITY_HEIGHT = 220
FONT_SIZE = 13


def finite(value: object) -> float | None:
    """``value`` as a float if it is a finite number (a bool is not), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def positive(value: object) -> float | None:
    """``value`` as a float if it is a finite number above 0 (what a log axis can show), else None."""
    number = finite(value)
    return number if number is not None and number > 0 else None


def whole(value: object) -> int | None:
    """A finite number as an int (a step), else None."""
    number = finite(value)
    return None if number is None else int(number)


@dataclass(frozen=True)
class RunSummary:
    """One run in numbers; None where the run has nothing to say (yet)."""

    name: str
    path: Path
    state: str  # core.runs.LIVENESS, or "unreadable" for a status that cannot be read
    step: int
    total_steps: int
    final_loss: float | None  # mean of the last max(5, 5 %) loss records, see FINAL_FRACTION
    best_frechet: float | None  # the lowest FD of the run's quality records
    best_spread: float | None  # that record's ± (one standard error of the FD)
    best_accuracy: float | None  # that record's classifier accuracy
    best_step: int | None  # that record's step
    wall_seconds: float | None  # the elapsed of the last record with one: training seconds, pauses excluded
    images_per_sec: float | None  # median of the loss records' images/s
    batch_size: int  # the global batch, all processes together

    def to_dict(self) -> dict:
        """JSON-ready: numbers as numbers, None (null) for what is missing, the absolute path as text."""
        return {**asdict(self), "path": str(self.path.absolute())}


def read_records(run: RunDir) -> list[dict]:
    """Every complete line of metrics.jsonl that holds a JSON object; bytes that are not UTF-8 and
    lines that are not JSON are skipped, and an unreadable file reads as no records."""
    try:
        return MetricsTail(run.metrics_path).read_new()
    except OSError:
        return []


def summarize(run: RunDir) -> RunSummary:
    """The run's :class:`RunSummary`; :class:`RunError` only if its config.json is unusable."""
    config = run.config()
    records = read_records(run)
    try:
        status = run.status()
        state = run.liveness_of(status)
    except RunError:
        state, status = "unreadable", None
    losses = [v for v in (positive(r.get("loss")) for r in loss_records(records)) if v is not None]
    speeds = [v for v in (finite(r.get("images_per_sec")) for r in loss_records(records)) if v is not None]
    steps = [s for s in (whole(r.get("step")) for r in records) if s is not None]
    elapsed = [v for v in (finite(r.get("elapsed")) for r in records) if v is not None]
    return RunSummary(
        name=run.path.name,
        path=run.path,
        state=state,
        step=status.step if status else max(steps, default=0),
        total_steps=status.total_steps if status else config.train.steps,
        final_loss=final_loss(losses),
        **best_quality(records),
        wall_seconds=elapsed[-1] if elapsed else None,
        images_per_sec=statistics.median(speeds) if speeds else None,
        batch_size=config.train.batch_size,
    )


def final_loss(losses: Sequence[float]) -> float | None:
    """Mean of the last k losses, k = max(FINAL_MIN, ceil(FINAL_FRACTION · n)), at most n."""
    if not losses:
        return None
    count = min(len(losses), max(FINAL_MIN, math.ceil(FINAL_FRACTION * len(losses))))
    return math.fsum(losses[-count:]) / count


def best_quality(records: list[dict]) -> dict[str, float | int | None]:
    """The ``best_*`` fields of a summary: the quality record of the lowest finite, positive FD (the
    first of equals), with its spread, accuracy and step; all None without one."""
    best: tuple[float, dict] | None = None
    for record in quality_records(records):
        frechet = positive(record["quality"].get("frechet"))
        if frechet is not None and (best is None or frechet < best[0]):
            best = frechet, record
    if best is None:
        return {"best_frechet": None, "best_spread": None, "best_accuracy": None, "best_step": None}
    frechet, record = best
    quality = record["quality"]
    return {
        "best_frechet": frechet,
        "best_spread": finite(quality.get("frechet_spread")),
        "best_accuracy": finite(quality.get("accuracy")),
        "best_step": whole(record.get("step")),
    }


def check_axis(x: str) -> str:
    """``x`` if it is one of :data:`X_AXES`; else ValueError (one line)."""
    if x not in X_AXES:
        raise ValueError(f"the x axis is step or time, not {x!r}")
    return x


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`KINDS`; else ValueError (one line)."""
    if kind not in KINDS:
        raise ValueError(f"the curve is loss or quality, not {kind!r}")
    return kind


def series_of(records: list[dict], x: str = "step", kind: str = "loss") -> list[tuple[float, float]]:
    """(x, y) of each record of ``kind``, by x: x is the step or the elapsed seconds (``time``), y the
    loss or the quality record's Fréchet distance. Records without a finite x, or without a finite y
    above 0 (both curves are drawn on log axes), are skipped."""
    field = X_FIELDS[check_axis(x)]
    if check_kind(kind) == "loss":
        points = [(finite(r.get(field)), positive(r.get("loss"))) for r in loss_records(records)]
    else:
        quality = quality_records(records)
        points = [(finite(r.get(field)), positive(r["quality"].get("frechet"))) for r in quality]
    return sorted(((px, py) for px, py in points if px is not None and py is not None), key=lambda p: p[0])


def series(run: RunDir, x: str = "step", kind: str = "loss") -> list[tuple[float, float]]:
    """:func:`series_of` the run's metrics."""
    return series_of(read_records(run), x, kind)


# --- the PNG --------------------------------------------------------------------------------------

Points = list[tuple[float, float]]


@dataclass(frozen=True)
class Frame:
    """A panel's plot rectangle in pixels and the ranges it shows: x linear, y as log10(y)."""

    left: int
    top: int
    right: int
    bottom: int
    x0: float
    x1: float
    log0: float
    log1: float

    def at(self, x: float, y: float) -> tuple[float, float]:
        """The pixel of data point (x, y): px = left + (x - x0) / (x1 - x0) · width, likewise for
        log10(y) upwards from the bottom."""
        px = self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)
        py = self.bottom - (math.log10(y) - self.log0) / (self.log1 - self.log0) * (self.bottom - self.top)
        return px, py


def x_range(groups: Sequence[Sequence[Points]]) -> tuple[float, float]:
    """From 0 (or a lower x) to the largest x of every point (never an empty range): runs are compared
    from their start."""
    xs = [x for group in groups for points in group for x, _ in points]
    low = min([0.0, *xs])
    return low, max([low + 1, *xs])


def log_range(group: Sequence[Points]) -> tuple[float, float]:
    """log10 of the lowest and highest y, 4 % wider each side; a flat set gets ± 0.5 decade."""
    logs = [math.log10(y) for points in group for _, y in points] or [0.0]
    low, high = min(logs), max(logs)
    if high - low < 1e-6:
        return low - 0.5, high + 0.5
    pad = 0.04 * (high - low)
    return low - pad, high + pad


def nice_step(span: float, count: int) -> float:
    """The 1, 2 or 5 × 10^k closest above span / count: ticks at its multiples."""
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw - 1e-12 * power)


DURATION_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def x_ticks(x0: float, x1: float, axis: str, count: int = 6) -> list[float]:
    """Tick positions in [x0, x1], about ``count`` of them: round steps, or round durations."""
    span = x1 - x0
    if axis == "time":
        step = next((s for s in DURATION_STEPS if s >= span / count), nice_step(span / 86400, count) * 86400)
    else:
        step = max(1.0, nice_step(span, count))
    first = math.ceil(x0 / step - 1e-9) * step
    return [first + i * step for i in range(int((x1 - first) / step + 1e-9) + 1)]


def log_ticks(log0: float, log1: float) -> list[float]:
    """Tick values between 10^log0 and 10^log1: the decades when there are 3 or more, else 1, 2 and 5
    times them, else 1-9 times them; at worst the two ends."""
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [
            m * 10.0**k
            for k in range(math.floor(log0), math.ceil(log1) + 1)
            for m in mantissas
            if log0 <= math.log10(m * 10.0**k) <= log1
        ]
        if len(ticks) >= (3 if mantissas == (1,) else 2):
            return ticks
    return [10**log0, 10**log1]


def duration_label(seconds: float) -> str:
    """An axis label for a wall time: 45s, 5m, 1h30m, 2d."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m" + (f"{seconds % 60:02d}s" if seconds % 60 else "")
    if seconds < 86400:
        return f"{seconds // 3600}h" + (f"{seconds % 3600 // 60:02d}m" if seconds % 3600 // 60 else "")
    return f"{seconds / 86400:g}d"


def x_label(value: float, axis: str) -> str:
    if axis == "time":
        return duration_label(value)
    return f"{value / 1000:g}k" if value >= 10_000 else f"{value:g}"


def tint(colour: str, amount: float) -> tuple[int, int, int]:
    """``colour`` (#rrggbb) moved ``amount`` of the way to white."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    r, g, b = (round(c + (255 - c) * amount) for c in rgb)
    return r, g, b


def moving_average(values: Sequence[float], half: int) -> list[float]:
    """Centred mean over i - half .. i + half (fewer at the ends): the PNG sees the whole run, so
    unlike the app's live chart it needs no lagging, causal average."""
    sums = [0.0]
    for value in values:
        sums.append(sums[-1] + value)
    out = []
    for i in range(len(values)):
        lo, hi = max(0, i - half), min(len(values), i + half + 1)
        out.append((sums[hi] - sums[lo]) / (hi - lo))
    return out


def smoothed(points: Points) -> Points:
    """The points with y replaced by a :func:`moving_average` of log10(y) over 1/20 of them."""
    half = len(points) // (2 * SMOOTH_POINTS)
    if half == 0:
        return points
    logs = moving_average([math.log10(y) for _, y in points], half)
    return [(x, 10**v) for (x, _), v in zip(points, logs, strict=True)]


class Painter:
    """Draws panels, ticks and the legend on one image, in one font."""

    def __init__(self, image: Image.Image) -> None:
        self.draw = ImageDraw.Draw(image)
        self.font = ImageFont.load_default(size=FONT_SIZE)

    def text(self, at: tuple[float, float], text: str, anchor: str, fill: str = "black") -> None:
        self.draw.text(at, text, fill=fill, font=self.font, anchor=anchor)

    def legend(self, names: Sequence[str], top: int) -> int:
        """A swatch and the name of each run, in rows that wrap at the image's width; returns the
        bottom of the last row."""
        x, y = MARGIN[0], top
        for i, name in enumerate(names):
            room = 14 + 6 + self.draw.textlength(name, font=self.font) + 18
            if x + room > WIDTH - MARGIN[1] and x > MARGIN[0]:
                x, y = MARGIN[0], y + 20
            self.draw.rectangle([x, y + 2, x + 14, y + 16], fill=colour_of(i))
            self.text((x + 20, y + 9), name, "lm")
            x += round(room)
        return y + 20

    def axes(self, frame: Frame, axis: str, title: str, y_format: Callable[[float], str]) -> None:
        """The panel's box, grid lines and labelled ticks, and its title above it."""
        draw = self.draw
        for value in log_ticks(frame.log0, frame.log1):
            _, py = frame.at(frame.x0, value)
            draw.line([frame.left, py, frame.right, py], fill="#e4e4e4")
            self.text((frame.left - 6, py), y_format(value), "rm")
        for value in x_ticks(frame.x0, frame.x1, axis):
            px, _ = frame.at(value, 10**frame.log0)
            draw.line([px, frame.top, px, frame.bottom], fill="#f0f0f0")
            draw.line([px, frame.bottom, px, frame.bottom + 4], fill="black")
            self.text((px, frame.bottom + 6), x_label(value, axis), "mt")
        draw.rectangle([frame.left, frame.top, frame.right, frame.bottom], outline="black")
        self.text((frame.left, frame.top - 6), title, "ls")

    def curve(self, frame: Frame, points: Points, colour: str | tuple[int, int, int], width: int) -> None:
        coords = [frame.at(x, y) for x, y in points]
        if len(coords) > 1:
            self.draw.line(coords, fill=colour, width=width, joint="curve")

    def markers(self, frame: Frame, points: Points, colour: str, spreads: Sequence[float | None]) -> None:
        """A dot per point, with a bar of ± its spread where it has one (clipped above 0)."""
        for (x, y), spread in zip(points, spreads, strict=True):
            px, py = frame.at(x, y)
            if spread:
                low = frame.at(x, max(y - spread, 10**frame.log0))[1]
                self.draw.line([px, frame.at(x, y + spread)[1], px, low], fill=colour, width=1)
            self.draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)


def quality_spreads(records: list[dict], x: str) -> dict[float, float | None]:
    """The FD spread of each quality record, by its x (what :func:`series_of` gives it)."""
    field = X_FIELDS[x]
    return {
        finite(r.get(field)): finite(r["quality"].get("frechet_spread"))  # type: ignore[misc]
        for r in quality_records(records)
        if finite(r.get(field)) is not None
    }


def y_text(value: float) -> str:
    return f"{value:.3g}"


def write_compare_png(runs: Sequence[RunDir], path: str | os.PathLike, x: str = "step") -> Path:
    """One PNG of the runs' curves against step or wall time (``x``), written atomically: loss (log y;
    raw in a pale tint, smoothed in full colour) and, when any run has quality records, a panel of FD
    (log y, a dot ± its spread per evaluation) below it on the same x range; a legend names each run
    in its colour. ValueError for no runs or a bad ``x``; OSError when ``path`` cannot be written."""
    check_axis(x)
    if not runs:
        raise ValueError("no runs to draw")
    records = [read_records(run) for run in runs]
    names = [run.path.name for run in runs]
    losses = [series_of(r, x, "loss") for r in records]
    qualities = [series_of(r, x, "quality") for r in records]
    with_quality = any(qualities)
    x0, x1 = x_range([losses, qualities])

    legend_bottom = Painter(Image.new("RGB", (WIDTH, 10))).legend(names, 34)  # it decides the height
    loss_top = legend_bottom + 28
    quality_top = loss_top + LOSS_HEIGHT + 56
    height = (quality_top + QUALITY_HEIGHT if with_quality else loss_top + LOSS_HEIGHT) + 56
    image = Image.new("RGB", (WIDTH, height), "white")
    paint = Painter(image)
    axis_name = "step" if x == "step" else "wall time (training seconds)"
    what = "loss and quality" if with_quality else "loss"
    count = f"{len(runs)} runs" if len(runs) > 1 else "1 run"
    paint.text((WIDTH / 2, 10), f"{count}: {what} against {axis_name}", "mt")
    paint.legend(names, 34)
    right = WIDTH - MARGIN[1]
    loss_frame = Frame(MARGIN[0], loss_top, right, loss_top + LOSS_HEIGHT, x0, x1, *log_range(losses))
    draw_losses(paint, loss_frame, losses, x)
    if with_quality:
        bottom = quality_top + QUALITY_HEIGHT
        frame = Frame(MARGIN[0], quality_top, right, bottom, x0, x1, *log_range(qualities))
        spreads = [quality_spreads(r, x) for r in records]
        draw_qualities(paint, frame, qualities, spreads, x)
    paint.text((WIDTH / 2, height - 14), axis_name, "mm")
    return save_png(image, path, {"Software": "cfg-tui", "Comment": f"runs compared: {', '.join(names)}"})


def colour_of(index: int) -> str:
    return PNG_COLOURS[index % len(PNG_COLOURS)]


def draw_losses(paint: Painter, frame: Frame, losses: Sequence[Points], x: str) -> None:
    """Every run's raw loss pale, then every run's smoothed loss bold (each trend above all the noise)."""
    paint.axes(frame, x, "loss (log scale; pale: each logged loss, bold: smoothed)", y_text)
    for i, points in enumerate(losses):
        paint.curve(frame, points, tint(colour_of(i), RAW_TINT), 1)
    for i, points in enumerate(losses):
        paint.curve(frame, smoothed(points), colour_of(i), 2)
        if len(points) == 1:
            paint.markers(frame, points, colour_of(i), [None])


def draw_qualities(
    paint: Painter, frame: Frame, qualities: Sequence[Points], spreads: Sequence[dict], x: str
) -> None:
    """Each run's FD per evaluation: a dot ± its spread, joined by straight lines (a run has a few)."""
    paint.axes(frame, x, "Frechet distance (log scale; bars: +- one standard error; lower is better)", y_text)
    for i, (points, spread) in enumerate(zip(qualities, spreads, strict=True)):
        paint.curve(frame, points, colour_of(i), 2)
        paint.markers(frame, points, colour_of(i), [spread.get(px) for px, _ in points])
