"""Quality during training: quick evaluations at the right steps in metrics.jsonl, kept consistent by a
resume, ignored or used by every reader, shown by ``cfg-tui runs --detail`` and the Train screen."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from rich.style import Style

import core.quick_eval as quick_eval
from core.lifecycle import create_run, open_session, prepare_resume, train_run
from core.quick_eval import QualityOff, QuickEval, auto_eval_every, check_measurable
from core.runs import RunDir, loss_records, quality_records
from core.session import SessionOptions, TrainingSession
from core.settings import RunSettings, plan_run
from core.unet import UNetConfig
from tests.conftest import TINY, TINY_TRAIN, cli, run_config
from tui.app import CfgTuiApp
from tui.cli import run as run_cli
from tui.commands.train import _torchrun
from tui.settings import AppSettings
from tui.widgets.loss_chart import LossChart
from tui.widgets.quality_chart import EMPTY_TEXT, QualityChart

CPU = torch.device("cpu")
TINY10 = RunSettings(
    preset="cpu", steps=25, batch_size=16, channels=(8, 16), layers=1, embed_dim=8, device="cpu"
)
"""A tiny U-Net of ten classes of 32 × 32: the classifier can judge its samples."""
EVERY_10 = SessionOptions(checkpoint_every=10, preview_every=0, log_every=5, eval_every=10, eval_per_class=2)


def quality_steps(run: RunDir) -> list[int]:
    return [r["step"] for r in quality_records(run.metrics())]


def new_run(path: Path, data_root: Path, steps: int = 25) -> tuple[RunDir, object]:
    return create_run(plan_run(RunSettings(**{**TINY10.__dict__, "steps": steps})), path, data_root=data_root)


def test_evaluations_at_every_n_steps_and_at_the_end(tmp_path: Path, data_root: Path) -> None:
    run, data = new_run(tmp_path / "run", data_root)
    logs: list[str] = []
    session = open_session(run, CPU, data_root, EVERY_10, data=data, log=logs.append)
    assert train_run(session) == "finished"
    records = run.metrics()
    assert quality_steps(run) == [10, 20, 25]
    assert [r["step"] for r in loss_records(records)] == [5, 10, 15, 20, 25]
    # Each evaluation follows the loss record of its step, and the clock never runs back.
    assert [(r["step"], "quality" in r) for r in records][1:4] == [(10, False), (10, True), (15, False)]
    elapsed = [r["elapsed"] for r in records]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    for record in quality_records(records):
        q = record["quality"]
        assert (q["samples"], q["solver"], q["steps"], q["guidance"], q["seed"]) == (
            20,
            "midpoint",
            4,
            3.0,
            0,
        )
        assert math.isfinite(q["frechet"]) and q["frechet"] > 0 and 0 <= q["accuracy"] <= 1
        assert q["seconds"] > 0 and set(record) == {"step", "elapsed", "quality"}
    said = [line for line in logs if line.startswith("quality at step")]
    assert len(said) == 3 and "FD " in said[0] and "accuracy" in said[0]
    assert run.status().state == "finished"  # written after the last evaluation


def test_the_same_weights_measure_the_same_every_time(data_root: Path) -> None:
    """Fixed noise and a fixed reference: evaluations at different steps differ by the model only."""
    from core.trainer import new_model

    model = new_model(UNetConfig(channels=(8, 16), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8), 0)
    evaluation = QuickEval.load("mnist", model.config, data_root, CPU, per_class=2)
    first, second = evaluation.measure(model), evaluation.measure(model)
    assert {k: v for k, v in first.items() if k != "seconds"} == {
        k: v for k, v in second.items() if k != "seconds"
    }


def test_resume_cuts_quality_records_back_to_the_checkpoint(tmp_path: Path, data_root: Path) -> None:
    run, data = new_run(tmp_path / "run", data_root, steps=40)
    session = open_session(run, CPU, data_root, EVERY_10, data=data)
    assert train_run(session, should_stop=lambda: session.trainer.step >= 20) == "stopped"
    assert quality_steps(run) == [10, 20] and "quality" in run.metrics()[-1]
    last_elapsed = run.metrics()[-1]["elapsed"]
    # What a trainer killed after step 30 but before its next checkpoint would have left behind:
    run.append_metrics({"step": 30, "loss": 1.0, "elapsed": last_elapsed + 5})
    run.append_metrics({"step": 30, "elapsed": last_elapsed + 9, "quality": {"frechet": 1.0}})

    resumed = open_session(prepare_resume(run.path), CPU, data_root, EVERY_10)
    assert resumed.trainer.step == 20 and quality_steps(run) == [10, 20]
    assert resumed.elapsed_before == last_elapsed  # the last record kept is a quality record
    assert train_run(resumed) == "finished"
    assert quality_steps(run) == [10, 20, 30, 40]
    assert [r["step"] for r in loss_records(run.metrics())] == list(range(5, 45, 5))
    assert all(r["elapsed"] >= last_elapsed for r in run.metrics() if r["step"] > 20)


def test_a_run_that_cannot_be_measured_trains_on_and_says_why_once(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.safetensors").write_bytes(b"not a classifier")
    monkeypatch.setattr(quick_eval, "CLASSIFIER", tmp_path / "bad.safetensors")
    run, data = new_run(tmp_path / "run", data_root)
    logs: list[str] = []
    assert train_run(open_session(run, CPU, data_root, EVERY_10, data=data, log=logs.append)) == "finished"
    off = [line for line in logs if "quality" in line]
    assert len(off) == 1 and off[0].startswith("quality evaluation off: ") and "\n" not in off[0]
    assert quality_steps(run) == [] and len(loss_records(run.metrics())) == 5


def test_an_evaluation_that_fails_turns_evaluations_off_not_the_run(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: QuickEval, model: object) -> dict:
        raise RuntimeError("linalg.eigh: the algorithm failed to converge")

    monkeypatch.setattr(QuickEval, "measure", fail)
    run, data = new_run(tmp_path / "run", data_root)
    logs: list[str] = []
    assert train_run(open_session(run, CPU, data_root, EVERY_10, data=data, log=logs.append)) == "finished"
    assert [line for line in logs if "quality" in line] == [
        "quality evaluation off: it failed at step 10 (linalg.eigh: the algorithm failed to converge)"
    ]
    assert quality_steps(run) == []


@pytest.mark.parametrize(
    ("dataset", "model", "reason"),
    [
        ("fashion", UNetConfig(), "the classifier knows MNIST digits, not fashion"),
        ("mnist", TINY, "this model makes 2 classes of 1×16×16"),
    ],
)
def test_only_mnist_sized_runs_are_measured(dataset: str, model: UNetConfig, reason: str) -> None:
    with pytest.raises(QualityOff, match=reason):
        check_measurable(dataset, model)
    check_measurable("mnist", UNetConfig())


def test_the_default_is_five_evaluations_for_runs_long_enough(tmp_path: Path) -> None:
    assert auto_eval_every(2500, 128) == 500  # the cpu preset: 320,000 images
    assert auto_eval_every(5000, 250) == 1000  # the lab's recipe
    assert auto_eval_every(1000, 16) == 0  # 16,000 images: five evaluations would cost over 5 %
    trainer = cpu_sized_trainer(steps=2500)
    assert TrainingSession(RunDir(tmp_path), trainer, SessionOptions()).eval_every == 500
    assert TrainingSession(RunDir(tmp_path), trainer, SessionOptions(eval_every=0)).eval_every == 0


def cpu_sized_trainer(steps: int) -> object:
    """A trainer of ``steps`` steps of 128, as the cpu preset's (no data are read)."""
    from core.data import ImageBatches
    from core.trainer import CFGTrainer, TrainConfig, new_model

    data = ImageBatches(torch.zeros(4, 1, 16, 16), torch.zeros(4, dtype=torch.long))
    return CFGTrainer(new_model(TINY, 0), data, TrainConfig(steps, 128))


def test_torchrun_passes_eval_every_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    class Done:
        pid = -1

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(
        "tui.commands.train.subprocess.Popen", lambda command, **kw: seen.append(command) or Done()
    )
    _torchrun(2, tmp_path, "cpu", None, SessionOptions(eval_every=7))
    _torchrun(2, tmp_path, "cpu", None, SessionOptions())
    assert seen[0][seen[0].index("--eval-every") + 1] == "7"
    assert "--eval-every" not in seen[1]  # the default is decided by the trainer


# --- the command line -------------------------------------------------------------------------------


def invoke(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run ``cfg-tui ARGS`` in this process; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        run_cli(list(args))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_train_eval_every_and_runs_detail(
    tmp_path: Path, cli_env: dict, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "runs" / "quality"
    args = ["train", *TINY_TRAIN, "--steps", "25", "--log-every", "5", "--eval-every", "20"]
    result = cli(*args, "--run-dir", str(run), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert quality_steps(RunDir(run)) == [20, 25]
    assert result.stderr.count("quality at step") == 2

    code, out, err = invoke(capsys, "runs", str(tmp_path / "runs"), "--detail", "quality")
    assert code == 0, err
    assert "finished" in out and "channels 8,16" in out and "25 steps of 16" in out
    rows = [line for line in out.splitlines() if "midpoint × 4, w = 3" in line]
    assert [row.split("│")[1].strip() for row in rows] == ["20", "25"]
    for row, record in zip(rows, quality_records(RunDir(run).metrics()), strict=True):
        q = record["quality"]
        assert f"{q['frechet']:.2f}±{q['frechet_spread']:.2f}" in row and f"{q['accuracy']:.3f}" in row
    last_loss = loss_records(RunDir(run).metrics())[-1]["loss"]
    assert f"│ 25   │ {last_loss:.4f} │" in out  # the loss table ends at the last logged step
    code, out, _ = invoke(capsys, "runs", str(tmp_path / "runs"))  # the list still reads the run
    assert code == 0 and "finished" in out and "25/25" in out and f"{last_loss:.4f}" in out


@pytest.mark.parametrize("name", ["nowhere", "not-a-run"])
def test_runs_detail_of_a_bad_run_is_one_line(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "not-a-run").mkdir()
    code, out, err = invoke(capsys, "runs", str(tmp_path), "--detail", name)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("cfg-tui: error: ") and name in err


def test_runs_detail_without_quality_records_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = RunDir.create(tmp_path / "plain", run_config(steps=20))
    for step in (10, 20):
        run.append_metrics({"step": step, "loss": 0.5, "lr": 1e-3, "images_per_sec": 100.0, "elapsed": step})
    code, out, err = invoke(capsys, "runs", "--detail", str(run.path))
    assert code == 0, err
    assert "no quality evaluations" in out and "0.5000" in out


# --- the Train screen ----------------------------------------------------------------------------


def quality_record(step: int, frechet: float, accuracy: float) -> dict:
    quality = {"frechet": frechet, "frechet_spread": 0.05 * frechet, "accuracy": accuracy, "samples": 300}
    return {"step": step, "elapsed": step * 0.3, "quality": quality}


def write_run_with_quality(path: Path) -> RunDir:
    run = RunDir.create(path, run_config(steps=500, batch_size=16))
    for step in range(10, 510, 10):
        record = {"step": step, "loss": 1 / step, "lr": 1e-3, "images_per_sec": 450.0, "elapsed": step * 0.3}
        run.append_metrics(record | {"memory_mb": 800.0})
        if step % 100 == 0:
            run.append_metrics(quality_record(step, 4000 / (step / 100) ** 2, min(0.99, step / 500)))
    return run


@pytest.mark.asyncio
async def test_train_screen_draws_the_quality_records_of_the_followed_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = write_run_with_quality(runs / "measured")
    app = CfgTuiApp(AppSettings(runs_folder=runs))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        screen = app.screen
        chart = screen.query_one(QualityChart)
        assert chart.render_text(40, 8).plain == EMPTY_TEXT  # nothing followed yet
        screen.follow(run)
        await pilot.pause()
        assert [(p.step, p.frechet, p.accuracy) for p in chart.points] == [
            (100, 4000.0, 0.2), (200, 1000.0, 0.4), (300, 4000 / 9, 0.6), (400, 250.0, 0.8),
            (500, 160.0, 0.99),
        ]  # fmt: skip
        assert len(screen.query_one(LossChart).points) == 50  # the loss chart ignores quality records
        drawn = chart.render().plain.splitlines()
        assert chart.content_size.height >= 3 and len(drawn) == chart.content_size.height
        assert any(0x2800 < ord(ch) <= 0x28FF for ch in "".join(drawn))
        assert drawn[0].lstrip().startswith("3.") and drawn[-1].rstrip().endswith("step 500")
        assert chart.border_subtitle == "step 500: FD 160.0±8.0, accuracy 0.990"
        assert "450 img/s" in str(screen.query_one("#train-stats").content)  # from the last loss record

        run.append_metrics(quality_record(510, 150.0, 0.99))  # a new evaluation while followed
        await pilot.pause(0.6)
        assert chart.points[-1].step == 510


@pytest.mark.parametrize(("width", "height"), [(0, 0), (1, 1), (12, 2), (16, 2), (17, 3), (52, 8), (131, 30)])
@pytest.mark.parametrize("count", [0, 1, 2, 5])
def test_quality_chart_fits_any_size(width: int, height: int, count: int) -> None:
    chart = QualityChart()
    chart._style = lambda name: Style()  # type: ignore[method-assign]
    chart.add(quality_record(100 * i, 3000 / i, 0.2 * i) for i in range(1, count + 1))
    lines = chart.render_text(width, height).plain.split("\n")
    assert len(lines) <= max(height, 1) and all(len(line) <= width for line in lines)
    if count >= 2 and width >= 16 and height >= 2:
        assert len(lines) == height and any(0x2800 < ord(ch) <= 0x28FF for ch in "".join(lines))
