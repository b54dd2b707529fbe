"""Comparing runs (issue 17): core.compare's summaries, series and PNG, ``cfg-tui runs --compare`` and
the app's CompareChart, on runs made up by hand."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from PIL import Image
from textual.app import App, ComposeResult
from textual.geometry import Region
from typer.testing import CliRunner

from core.compare import (
    PNG_COLOURS,
    read_records,
    series,
    series_of,
    summarize,
    write_compare_png,
)
from core.run_files import RunStatus
from core.runs import RunDir, RunError
from tests.conftest import run_config
from tests.test_startup import cfg_tui
from tui.cli import app, run
from tui.widgets.compare_chart import PALETTE, CompareChart

GARBAGE = [
    b"not json at all\n",
    b"[1, 2, 3]\n",
    b'{"step": "ten", "loss": "low", "images_per_sec": null, "elapsed": "soon"}\n',
    b'{"step": 5, "loss": true, "images_per_sec": false}\n',
    b'{"step": 6, "loss": Infinity, "images_per_sec": NaN, "elapsed": -Infinity}\n',
    b'{"step": 7, "loss": -1.0}\n',
    b'{"step": 8, "quality": {"frechet": NaN, "accuracy": 1.0}}\n',
    b'{"step": 9, "quality": {"frechet": "12", "accuracy": 1.0}}\n',
    b'{"step": 9, "quality": "broken"}\n',
    b"\xff\xfe not utf-8 \xc3\n",
]
"""Lines a damaged or foreign metrics.jsonl may hold: none may count, none may raise."""


def loss_of(step: int) -> float:
    return 1.0 / (1 + step / 100)


def make_run(
    folder: Path,
    name: str,
    records: int,
    qualities: list[tuple[int, float, float | None, float]],
    batch_size: int = 16,
    state: str | None = "finished",
) -> RunDir:
    """A run of ``records`` loss records (every 10 steps, 0.5 s a step, images/s 100 + i) and quality
    records (step, FD, spread, accuracy) placed at their steps."""
    run = RunDir.create(folder / name, run_config(steps=records * 10, batch_size=batch_size))
    pending = sorted(qualities)
    for i in range(1, records + 1):
        step = 10 * i
        run.append_metrics({"step": step, "loss": loss_of(step), "lr": 1e-3, "images_per_sec": 100.0 + i,
                            "elapsed": step * 0.5, "memory_mb": 10.0})  # fmt: skip
        while pending and pending[0][0] <= step:
            at, frechet, spread, accuracy = pending.pop(0)
            quality = {"frechet": frechet, "accuracy": accuracy}
            if spread is not None:
                quality["frechet_spread"] = spread
            run.append_metrics({"step": at, "elapsed": at * 0.5 + 1, "quality": quality})
    if state is not None:
        run.write_status(RunStatus.now(state, records * 10, records * 10, elapsed=records * 5.0))
    return run


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two runs: ``long`` (200 loss records, three evaluations) and ``short`` (8, none)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    make_run(runs, "long", 200, [(500, 80.0, 4.0, 0.7), (1000, 40.0, 2.5, 0.85), (2000, 45.0, None, 0.9)])
    make_run(runs, "short", 8, [], batch_size=32)
    return runs


def test_a_summary_says_final_loss_best_fd_wall_time_and_speed(folder: Path) -> None:
    long, short = summarize(RunDir(folder / "long")), summarize(RunDir(folder / "short"))
    # 200 records: the last 5 % (10); 8 records: the last 5.
    assert long.final_loss == pytest.approx(statistics.mean(loss_of(10 * i) for i in range(191, 201)))
    assert short.final_loss == pytest.approx(statistics.mean(loss_of(10 * i) for i in range(4, 9)))
    best = (long.best_frechet, long.best_spread, long.best_accuracy, long.best_step)
    assert best == (40.0, 2.5, 0.85, 1000)  # the lowest FD, not the last
    assert short.best_frechet is short.best_spread is short.best_accuracy is short.best_step is None
    assert long.wall_seconds == 2000 * 0.5 + 1  # the last record is the evaluation at step 2000
    assert short.wall_seconds == 80 * 0.5
    assert long.images_per_sec == statistics.median(100.0 + i for i in range(1, 201))
    assert (long.state, long.step, long.total_steps, long.batch_size) == ("finished", 2000, 2000, 16)
    assert short.batch_size == 32
    assert json.loads(json.dumps(long.to_dict()))["path"] == str((folder / "long").absolute())


def test_garbage_lines_are_skipped_and_never_raise(folder: Path) -> None:
    run = RunDir(folder / "short")
    before = summarize(run)
    with run.metrics_path.open("ab") as f:
        f.write(b"".join(GARBAGE) + b'{"step": 90, "loss": 0.')  # and a torn last line
    after = summarize(run)
    assert after == before
    assert len(series(run)) == 8 and series(run, kind="quality") == []


def test_a_run_without_status_or_records_still_summarizes(tmp_path: Path) -> None:
    bare = RunDir.create(tmp_path / "bare", run_config(steps=70))
    summary = summarize(bare)
    assert (summary.state, summary.step, summary.total_steps) == ("new", 0, 70)
    assert summary.final_loss is summary.wall_seconds is summary.images_per_sec is None
    bare.status_path.write_text("{not json")
    assert summarize(bare).state == "unreadable"
    bare.config_path.write_text("[]")
    with pytest.raises(RunError):
        summarize(bare)


def test_series_by_step_or_time(folder: Path) -> None:
    records = read_records(RunDir(folder / "long"))
    assert series_of(records, "step", "quality") == [(500, 80.0), (1000, 40.0), (2000, 45.0)]
    assert series_of(records, "time", "quality") == [(251.0, 80.0), (501.0, 40.0), (1001.0, 45.0)]
    assert series_of(records, "time")[:2] == [(5.0, loss_of(10)), (10.0, loss_of(20))]
    for x, kind in (("epoch", "loss"), ("step", "lr")):
        with pytest.raises(ValueError):
            series_of(records, x, kind)


def colour_pixels(image: Image.Image, colour: str) -> int:
    rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(count for count, pixel in image.getcolors(1 << 20) if pixel == rgb)


def test_the_png_has_a_colour_per_run_a_legend_and_a_quality_panel(folder: Path, tmp_path: Path) -> None:
    runs = [RunDir(folder / "long"), RunDir(folder / "short")]
    path = write_compare_png(runs, tmp_path / "both.png")
    image = Image.open(path).convert("RGB")
    legend = image.crop((0, 30, image.width, 60))  # the legend's row, under the title
    for colour in PNG_COLOURS[:2]:
        assert colour_pixels(image, colour) > 200, colour
        assert colour_pixels(legend, colour) >= 14 * 14, colour  # its swatch
    only_loss = Image.open(write_compare_png(runs[1:], tmp_path / "one.png", x="time"))
    assert only_loss.height < image.height  # no quality records: no FD panel
    with pytest.raises(ValueError):
        write_compare_png(runs, tmp_path / "bad.png", x="epoch")
    bare = RunDir.create(tmp_path / "bare", run_config())  # nothing logged yet: empty axes, no error
    assert Image.open(write_compare_png([bare, bare], tmp_path / "bare.png", x="time")).width > 0


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["runs", *args])
    return result.exit_code, result.stdout, result.stderr


def test_compare_prints_a_table_and_json(folder: Path) -> None:
    code, out, _ = invoke("--compare", "long", "short", "--runs", str(folder))
    assert code == 0 and "long" in out and "short" in out
    assert "40.00±2.50 (1000)" in out and "best FD" in out
    code, out, _ = invoke("--compare", "long,short", "--runs", str(folder), "--json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == ["long", "short"]
    assert rows[0]["best_frechet"] == 40.0 and rows[0]["best_step"] == 1000 and rows[0]["batch_size"] == 16
    assert rows[1]["best_frechet"] is None and rows[1]["wall_seconds"] == 40.0
    assert rows[1]["final_loss"] == pytest.approx(statistics.mean(loss_of(10 * i) for i in range(4, 9)))


def test_compare_by_path_with_a_chart(folder: Path, tmp_path: Path) -> None:
    chart = tmp_path / "out.png"
    args = ("--compare", str(folder / "long"), str(folder / "short"), "--json", "--chart", str(chart))
    code, out, err = invoke(*args, "--x", "time")
    assert code == 0 and len(json.loads(out)) == 2  # the note goes to stderr: stdout stays JSON
    assert str(chart) in err and chart.is_file()
    image = Image.open(chart).convert("RGB")
    assert all(colour_pixels(image, colour) > 0 for colour in PNG_COLOURS[:2])


def test_the_folder_argument_still_lists_runs(folder: Path) -> None:
    code, out, _ = invoke(str(folder))
    assert code == 0 and "long" in out and "short" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--compare", "long", "nope"], "no run 'nope'"),
        (["--compare", "long"], "needs 2 runs or more"),
        (["--compare"], "needs 2 runs or more"),
        (["--compare", "long", "short", "--x", "epoch"], "step or time"),
        (["--compare", "long", "short", "--chart", "/no/such/folder/c.png"], "does not exist"),
        (["--compare", "long", "short", "--detail", "long"], "choose one"),
        (["--json"], "goes with --compare"),
        (["a", "b"], "give one FOLDER"),
    ],
)
def test_bad_input_is_one_line_and_exit_two(
    args: list[str], message: str, folder: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit:
        run(["runs", "--runs", str(folder), *args])
    err = capsys.readouterr().err
    assert exit.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("cfg-tui: error:") and message in err, err


def test_compare_loads_neither_torch_nor_textual(folder: Path, tmp_path: Path) -> None:
    chart = tmp_path / "c.png"
    args = ("--compare", "long", "short", "--runs", str(folder), "--chart", str(chart))
    out, loaded, code = cfg_tui("runs", *args)
    assert code in (0, None) and "short" in out and chart.is_file()
    assert loaded == []


class ChartApp(App):
    def compose(self) -> ComposeResult:
        yield CompareChart()


def strip_colours(chart: CompareChart) -> tuple[list[str], set[str]]:
    """The chart's rendered lines, and the colours of the cells that hold dots."""
    strips = chart.render_lines(Region(0, 0, *chart.size))
    colours = {
        segment.style.color.triplet.hex
        for strip in strips
        for segment in strip
        if segment.style and segment.style.color and segment.style.color.triplet
        and any(0x2800 < ord(c) <= 0x28FF for c in segment.text)
    }  # fmt: skip
    return [strip.text for strip in strips], colours


@pytest.mark.asyncio
async def test_compare_chart_overlays_runs_in_their_colours(folder: Path) -> None:
    chart_app = ChartApp()
    async with chart_app.run_test(size=(80, 20)) as pilot:
        chart = chart_app.query_one(CompareChart)
        chart.set_runs([(name, read_records(RunDir(folder / name))) for name in ("long", "short")])
        await pilot.pause()
        lines, colours = strip_colours(chart)
        assert colours == set(PALETTE[:2])
        assert "■ long" in lines[0] and "■ short" in lines[0]
        assert "step 2000" in lines[-1]
        assert chart.toggle_x() == "time"
        await pilot.pause()
        lines, colours = strip_colours(chart)
        assert "time 16m40s" in lines[-1] and "step" not in lines[-1] and colours == set(PALETTE[:2])
        chart.toggle_kind()  # only "long" has evaluations
        await pilot.pause()
        lines, colours = strip_colours(chart)
        assert lines[0].startswith("FD (log)") and colours == {PALETTE[0]}


@pytest.mark.asyncio
async def test_compare_chart_legend_fits_narrow_charts() -> None:
    chart_app = ChartApp()
    async with chart_app.run_test(size=(80, 20)) as pilot:
        chart = chart_app.query_one(CompareChart)
        chart.set_runs([("a-rather-long-run-name", [{"step": 1, "loss": 0.5}]), ("another-long-one", [])])
        await pilot.pause()
        wide = chart.render_text(80, 10).plain.splitlines()[0]
        narrow = chart.render_text(22, 10).plain.splitlines()[0]
        assert "a-rather-long-run-name" in wide and "another-long-one" in wide
        assert len(narrow) <= 22 and narrow.count("■") == 2 and "…" in narrow
        assert len(chart.series()[0]) == 1 and chart.series()[1] == []
        chart.set_runs([])
        assert chart.render_text(80, 10).plain == "no runs to compare"
