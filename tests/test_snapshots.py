"""Weight snapshots at every checkpoint (``checkpoints/step-NNNNNN.safetensors``): written by the
session, listed by :class:`RunDir`, looked up by :func:`snapshot_file`, cut back on a resume and
shown by ``cfg-tui runs --detail``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from core.checkpoint import load_checkpoint, read_tensors
from core.lifecycle import create_run, open_session, prepare_resume, train_run
from core.runs import RunDir, RunError, snapshot_file, steps_text
from core.session import SessionOptions, TrainingSession
from core.settings import RunSettings, plan_run
from core.trainer import CFGTrainer, TrainConfig, new_model
from tests.conftest import TINY, bars, run_config
from tui.cli import app

CPU = torch.device("cpu")
OPTIONS = SessionOptions(checkpoint_every=10, preview_every=0, log_every=5, eval_every=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A finished 25-step run checkpointed every 10 steps: snapshots at 10, 20 and 25 (the end)."""
    run = RunDir.create(tmp_path_factory.mktemp("snapshots") / "run", run_config(steps=25))
    trainer = CFGTrainer(new_model(TINY, 0), bars(64), TrainConfig(steps=25, batch_size=16))
    assert TrainingSession(run, trainer, OPTIONS).run_until_done(lambda: False, lambda r: None) == "finished"
    return run


def _steps(run: RunDir) -> list[int]:
    return [step for step, _ in run.snapshots()]


def test_a_snapshot_is_kept_at_every_checkpoint_including_the_last(trained: RunDir) -> None:
    names = sorted(p.name for p in trained.checkpoints.glob("step-*"))
    assert names == ["step-000010.safetensors", "step-000020.safetensors", "step-000025.safetensors"]
    assert trained.snapshots() == [(s, trained.snapshot_path(s)) for s in (10, 20, 25)]
    for step, path in trained.snapshots():
        _, metadata = load_checkpoint(path, expect=TINY)  # loads: the weights fit the model
        assert metadata["step"] == str(step)
    last, first = read_tensors(trained.snapshot_path(25))[0], read_tensors(trained.snapshot_path(10))[0]
    final = read_tensors(trained.model_path)[0]
    assert last.keys() == final.keys() and all(torch.equal(last[k], final[k]) for k in final)
    assert not all(torch.equal(first[k], final[k]) for k in final)  # step 10 is an earlier model


def test_snapshots_lists_only_snapshot_names(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", run_config())
    assert run.snapshots() == []
    for name in ("step-000010.safetensors", "step-1234567.safetensors"):
        (run.checkpoints / name).write_bytes(b"x")
    strays = ("step-10.safetensors", "step-0000010.safetensors", "step-000010.safetensors.tmp",
              "step-00001x.safetensors", "model.safetensors", "notes.txt")  # fmt: skip
    for name in strays:
        (run.checkpoints / name).write_bytes(b"x")
    (run.checkpoints / "step-000030.safetensors").mkdir()  # a folder is no snapshot
    assert run.snapshots() == [(10, run.snapshot_path(10)), (1234567, run.snapshot_path(1234567))]
    assert run.snapshot_path(1234567).name == "step-1234567.safetensors"


def test_snapshot_file_finds_a_step_or_names_the_steps_there_are(trained: RunDir, tmp_path: Path) -> None:
    assert snapshot_file(trained.path, 20) == trained.snapshot_path(20)
    with pytest.raises(RunError) as info:
        snapshot_file(trained.path, 15)
    message = str(info.value)
    assert message == f"{trained.path} has no snapshot at step 15; its snapshots are at steps 10, 20, 25"
    empty = RunDir.create(tmp_path / "empty", run_config())
    with pytest.raises(RunError, match=r"has no snapshot at step 10; it has no snapshots$"):
        snapshot_file(empty.path, 10)
    with pytest.raises(RunError, match="is not a run"):
        snapshot_file(tmp_path, 10)


def test_a_long_list_of_steps_is_cut_in_the_middle() -> None:
    assert steps_text([500, 1000]) == "500, 1000"
    steps = list(range(100, 2100, 100))
    assert steps_text(steps) == "100, 200, 300, 400, 500, …, 1600, 1700, 1800, 1900, 2000"


def test_a_resume_removes_the_snapshots_after_its_checkpoint(tmp_path: Path, data_root: Path) -> None:
    settings = RunSettings(
        preset="cpu", steps=30, batch_size=16, channels=(8, 16), layers=1, embed_dim=8, device="cpu"
    )
    run, data = create_run(plan_run(settings), tmp_path / "run", data_root=data_root)
    session = open_session(run, CPU, data_root, OPTIONS, data=data)
    assert train_run(session, should_stop=lambda: session.trainer.step >= 13) == "stopped"
    assert _steps(run) == [10, 13]
    # A snapshot past the checkpoint, as a crash between writing it and the state would leave.
    run.snapshot_path(20).write_bytes(b"from a discarded future")

    resumed = open_session(prepare_resume(run.path), CPU, data_root, OPTIONS)
    assert resumed.trainer.step == 13 and _steps(run) == [10, 13]
    assert train_run(resumed) == "finished"
    assert _steps(run) == [10, 13, 20, 30]
    assert load_checkpoint(run.snapshot_path(20))[1]["step"] == "20"  # written again, by training


def test_runs_detail_lists_the_snapshot_steps(trained: RunDir, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["runs", "--detail", str(trained.path)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip().startswith("snapshots")]
    assert len(lines) == 1
    assert lines[0].split(None, 1)[1].strip() == "10, 20, 25 (checkpoints/step-NNNNNN.safetensors)"

    bare = RunDir.create(tmp_path / "bare", run_config())
    result = CliRunner().invoke(app, ["runs", "--detail", str(bare.path)])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if "snapshots" in line]
    assert rows == [["snapshots", "none"]]
