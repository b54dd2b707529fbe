import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.checkpoint import load_checkpoint, read_tensors
from core.runs import RunDir
from core.session import SessionOptions, TrainingSession
from core.trainer import CFGTrainer, TrainConfig, new_model
from tests.conftest import TINY, TINY_TRAIN, bars, cli, run_config


def _spawn(run: Path, steps: int, env: dict[str, str], *extra: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "tui.cli",
        "train",
        *TINY_TRAIN,
        "--steps",
        str(steps),
        "--run-dir",
        str(run),
    ]
    command += ["--log-every", "5", "--checkpoint-every", "20", *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_step(run: Path, step: int, process: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = RunDir(run).metrics()
        if records and records[-1]["step"] >= step:
            return records[-1]["step"]
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError(f"run did not reach step {step}")


def _model_tensors(run: Path) -> dict[str, torch.Tensor]:
    tensors, _ = read_tensors(RunDir(run).state_path)
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "optim."))}


def test_twenty_steps_make_a_complete_run_directory(tmp_path: Path, cli_env: dict) -> None:
    run = tmp_path / "run"
    args = ["train", *TINY_TRAIN, "--steps", "20", "--run-dir", str(run), "--checkpoint-every", "10"]
    result = cli(*args, "--preview-every", "10", env=cli_env)
    assert result.returncode == 0, result.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["channels"] == [8, 16] and config["train"]["steps"] == 20
    assert len(config["data"]["fingerprint"]) == 64 and config["versions"]["torch"] == torch.__version__
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20]
    assert set(records[0]) == {"step", "loss", "lr", "images_per_sec", "elapsed", "memory_mb"}
    assert all(math.isfinite(r["loss"]) and r["images_per_sec"] > 0 for r in records)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 20 and status["checkpoint_step"] == 20
    model, metadata = load_checkpoint(run / "checkpoints" / "model.safetensors")
    assert model.config.channels == (8, 16) and metadata["step"] == "20"
    assert sorted(p.name for p in (run / "previews").iterdir()) == ["step-000010.png", "step-000020.png"]
    listing = cli("runs", str(tmp_path), env=cli_env)
    assert "run" in listing.stdout and "finished" in listing.stdout and "20/20" in listing.stdout


def test_sigkill_leaves_a_dead_but_resumable_run(tmp_path: Path, cli_env: dict) -> None:
    run = tmp_path / "killed"
    process = _spawn(run, 200, cli_env)
    _wait_for_step(run, 45, process)
    process.kill()
    process.wait()
    status = RunDir(run).status()
    assert status.state == "running"  # as the killed process left it
    assert RunDir(run).liveness() == "dead"
    listing = cli("runs", str(tmp_path), env=cli_env)
    assert "dead" in listing.stdout
    load_checkpoint(RunDir(run).model_path)  # loadable
    assert all(isinstance(r["step"], int) for r in RunDir(run).metrics())
    resumed = cli("train", "--resume", str(run), env=cli_env)
    assert resumed.returncode == 0, resumed.stderr
    assert RunDir(run).status().state == "finished" and RunDir(run).status().step == 200
    steps = [r["step"] for r in RunDir(run).metrics()]
    assert steps == sorted(set(steps)) and steps[-1] == 200  # no step logged twice


def test_sigint_checkpoints_and_resume_equals_an_uninterrupted_run(tmp_path: Path, cli_env: dict) -> None:
    straight = tmp_path / "straight"
    assert (
        cli("train", *TINY_TRAIN, "--steps", "150", "--run-dir", str(straight), env=cli_env).returncode == 0
    )
    stopped = tmp_path / "stopped"
    process = _spawn(stopped, 150, cli_env)
    _wait_for_step(stopped, 25, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    status = RunDir(stopped).status()
    assert status.state == "stopped", status
    k = status.step
    assert 25 <= k < 150 and status.checkpoint_step == k and f"--resume {stopped}" in out
    assert read_tensors(RunDir(stopped).state_path)[1]["step"] == str(k)
    resumed = cli("train", "--resume", str(stopped), env=cli_env)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _model_tensors(straight), _model_tensors(stopped)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_extending_a_finished_run_equals_training_longer(tmp_path: Path, cli_env: dict) -> None:
    long, short = tmp_path / "long", tmp_path / "short"
    assert cli("train", *TINY_TRAIN, "--steps", "30", "--run-dir", str(long), env=cli_env).returncode == 0
    assert cli("train", *TINY_TRAIN, "--steps", "12", "--run-dir", str(short), env=cli_env).returncode == 0
    assert cli("train", "--resume", str(short), "--steps", "30", env=cli_env).returncode == 0
    a, b = _model_tensors(long), _model_tensors(short)
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert json.loads((short / "config.json").read_text())["train"]["steps"] == 30


@pytest.mark.parametrize(
    ("nan_from", "log_every", "reason"),
    [
        (14, 5, "loss became nan by step 15"),  # read at the log step after it
        # Not a log step, but a checkpoint step: the losses and weights are checked before writing.
        (18, 25, "weights or loss became non-finite by step 20"),
    ],
)
def test_non_finite_loss_fails_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, nan_from: int, log_every: int, reason: str
) -> None:
    config = TrainConfig(steps=30, batch_size=16)
    trainer = CFGTrainer(new_model(TINY, 0), bars(64), config)
    real_loss = trainer.loss
    trainer.loss = lambda z, y: real_loss(z, y) * (float("nan") if trainer.step >= nan_from else 1.0)
    run = RunDir.create(tmp_path / "run", run_config())
    options = SessionOptions(checkpoint_every=10, preview_every=0, log_every=log_every)
    session = TrainingSession(run, trainer, options)
    assert session.run_until_done(lambda: False, lambda record: None) == "failed"
    status = run.status()
    assert status.state == "failed" and status.reason == reason
    assert status.checkpoint_step == 10
    assert read_tensors(run.state_path)[1]["step"] == "10"
    model, _ = load_checkpoint(run.model_path)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_two_runs_can_not_share_a_folder(tmp_path: Path, cli_env: dict) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    result = cli("train", *TINY_TRAIN, "--steps", "2", "--run-dir", str(run), env=cli_env)
    assert result.returncode == 2 and "already exists and is not empty" in result.stderr
    assert os.listdir(run) == ["notes.txt"]
