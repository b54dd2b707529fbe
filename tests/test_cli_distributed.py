"""``cfg-tui train --nproc 2``: two gloo processes train one run like a single process would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from core.checkpoint import load_checkpoint, read_tensors
from core.data import load_split
from core.runs import RunDir
from core.sampling import generate
from tests.conftest import cli

TINY_MNIST = ["--channels", "8,16", "--layers", "1", "--embed-dim", "8", "--device", "cpu"]
RECIPE = ["--batch-size", "32", "--lr", "3e-3", "--eta", "0.2", "--steps", "300", "--log-every", "10"]
QUIET = ["--checkpoint-every", "100", "--preview-every", "0"]


def _train(run: Path, env: dict[str, str], *extra: str) -> list[dict]:
    result = cli("train", *TINY_MNIST, *RECIPE, *QUIET, "--run-dir", str(run), *extra, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return RunDir(run).metrics()


def test_two_processes_train_like_one_and_their_checkpoint_samples_in_one(
    tmp_path: Path, bars_data_root: Path
) -> None:
    env = {**os.environ, "CFG_TUI_DATA_ROOT": str(bars_data_root)}
    single = _train(tmp_path / "one", env)
    double = _train(tmp_path / "two", env, "--nproc", "2")

    run = RunDir(tmp_path / "two")
    assert run.config().processes == 2 and run.config().train.batch_size == 32
    status = run.status()
    assert (status.state, status.step, status.device) == ("finished", 300, "cpu × 2")
    assert [r["step"] for r in double] == list(range(10, 301, 10))
    assert run.model_path.is_file() and run.state_path.is_file() and list(run.previews.glob("*.png"))

    # Same global batch: the loss falls alike (last 50 steps within 15 %; both well below the start).
    first, last = (lambda rs: rs[0]["loss"]), (lambda rs: sum(r["loss"] for r in rs[-5:]) / 5)
    assert abs(last(double) - last(single)) < 0.15 * last(single)
    assert last(double) < 0.6 * first(double) and last(single) < 0.6 * first(single)

    # The two-process checkpoint, loaded and sampled in this one process, draws the right bars.
    model, _ = load_checkpoint(run.model_path, torch.device("cpu"))
    data, _ = load_split("mnist", "train", bars_data_root)
    assert torch.equal(_orientation(data.images), data.labels)
    labels = torch.tensor([0, 1]).repeat_interleave(32)
    samples = generate(model, labels, w=3.0, steps=30, seed=5)
    assert (_orientation(samples) == labels).float().mean() >= 0.9


def _orientation(images: torch.Tensor) -> torch.Tensor:
    """0 where the row means vary more than the column means (a horizontal bar), else 1."""
    rows, columns = images[:, 0].mean(2), images[:, 0].mean(1)
    return (rows.var(1) < columns.var(1)).long()


def test_a_two_process_run_stopped_by_ctrl_c_resumes_to_the_uninterrupted_weights(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    args = ["train", *TINY_MNIST, "--batch-size", "15", "--steps", "200", "--nproc", "2", "--log-every", "5"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert cli(*args, "--run-dir", str(straight), env=cli_env).returncode == 0

    command = [sys.executable, "-m", "tui.cli", *args, "--run-dir", str(stopped)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    launcher = subprocess.Popen(command, env=cli_env, **pipes)
    deadline = time.monotonic() + 120
    while not (RunDir(stopped).metrics() and RunDir(stopped).metrics()[-1]["step"] >= 20):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.02)
    launcher.send_signal(signal.SIGINT)  # Ctrl-C (the app's Stop signals rank 0: tested with the app)
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 0 and "Traceback" not in err, err[-2000:]
    status = RunDir(stopped).status()
    assert status.state == "stopped" and 20 <= status.step < 200, status
    assert status.checkpoint_step == status.step and "--resume" in out

    resumed = cli("train", "--resume", str(stopped), "--nproc", "2", "--log-every", "5", env=cli_env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    steps = [r["step"] for r in RunDir(stopped).metrics()]
    assert steps == sorted(set(steps)) and steps[-1] == 200  # no step logged twice
    a, b = (read_tensors(RunDir(run).state_path)[0] for run in (straight, stopped))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
