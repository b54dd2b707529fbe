"""Issue 18's hostile cases for a run's life: signals only to the run's own trainer, one trainer per
run whatever the timing, resume from the checkpoint (not status.json), oversized checkpoint
configurations, and failures (a full disk, an absurd learning rate) recorded rather than thrown."""

from __future__ import annotations

import dataclasses
import errno
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import core.session as session_module
from core.checkpoint import FORMAT, VERSION, CheckpointError, load_checkpoint, read_config
from core.configs import UNetConfig
from core.lifecycle import create_run, open_session, prepare_resume, stop_trainer, train_run
from core.run_lock import LOCK_NAME, RunLock, RunLocked, is_locked, lock_holder
from core.runs import RunDir, RunError, RunStatus
from core.session import SessionOptions
from core.settings import RunSettings, plan_run
from tests.conftest import cli, run_config

CPU = torch.device("cpu")
QUIET = SessionOptions(checkpoint_every=5, preview_every=0, log_every=5, eval_every=0)
TINY = RunSettings(
    preset="cpu", steps=20, batch_size=16, channels=(8, 16), layers=1, embed_dim=8, device="cpu"
)


def _files(run: RunDir) -> dict[str, tuple[int, int]]:
    """Every file of the run with its size and modification time: what "nothing changed" compares."""
    return {
        str(p.relative_to(run.path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(run.path.rglob("*"))
        if p.is_file()
    }


# --- signals ----------------------------------------------------------------------------------------


@pytest.fixture
def bystander() -> subprocess.Popen:
    """A live process that is not a trainer: it must never be signalled."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


@pytest.mark.parametrize("pid", [-1, 0, 1, "bystander", "other run's trainer"])
def test_stop_signals_nothing_but_the_runs_own_trainer(
    tmp_path: Path, bystander: subprocess.Popen, monkeypatch: pytest.MonkeyPatch, pid: object
) -> None:
    run = RunDir.create(tmp_path / "run", run_config(steps=50, batch_size=16))
    other = RunDir.create(tmp_path / "other", run_config(steps=50, batch_size=16))
    held = RunLock(other.path)
    held.acquire()  # this process plays the other run's trainer
    named = {"bystander": bystander.pid, "other run's trainer": os.getpid()}.get(pid, pid)
    run.write_status(dataclasses.replace(RunStatus.now("running", 10, 50), pid=named))
    sent: list[tuple[int, int]] = []
    with monkeypatch.context() as patch:  # undone here: the bystander's teardown kills it for real
        patch.setattr(os, "kill", lambda p, s: sent.append((p, s)))
        with pytest.raises(RunError, match=r"^run has no trainer running here \(none holds its lock\)"):
            stop_trainer(run)
    assert sent == [] and bystander.poll() is None
    held.release()


def test_stop_refuses_a_lock_holder_that_is_not_a_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This test process holds the lock, and its command line is pytest's: not signalled."""
    run = RunDir.create(tmp_path / "run", run_config(steps=50, batch_size=16))
    lock = RunLock(run.path)
    lock.acquire()
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda p, s: sent.append((p, s)))
    with pytest.raises(RunError, match=f"pid {os.getpid()} holds its lock but is not a cfg-tui trainer"):
        stop_trainer(run)
    assert sent == []
    monkeypatch.setattr("core.lifecycle.is_trainer", lambda pid: True)
    assert stop_trainer(run) == os.getpid() and sent == [(os.getpid(), signal.SIGINT)]
    lock.release()


# --- one trainer per run ----------------------------------------------------------------------------


def _contend(path: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue) -> None:
    lock = RunLock(path)
    barrier.wait()
    try:
        lock.acquire()
    except RunLocked:
        results.put("refused")
        return
    results.put("trains")
    time.sleep(0.3)  # hold it while the other tries


def test_two_trainers_started_together_never_both_hold_the_run(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    outcomes = []
    for trial in range(20):
        path = tmp_path / f"run-{trial}"
        path.mkdir()
        barrier, results = context.Barrier(2), context.Queue()
        workers = [context.Process(target=_contend, args=(str(path), barrier, results)) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        outcomes.append(sorted(results.get(timeout=5) for _ in workers))
    assert outcomes == [["refused", "trains"]] * 20


def test_a_second_trainer_of_a_run_is_refused_before_writing(tmp_path: Path, data_root: Path) -> None:
    run, data = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    first = open_session(run, CPU, data_root, QUIET, data=data)
    before = _files(run)
    with pytest.raises(RunLocked, match=rf"being trained by another process \(pid {os.getpid()}\)"):
        open_session(run, CPU, data_root, QUIET)
    assert _files(run) == before
    with pytest.raises(RunError, match="is still running"):
        prepare_resume(run.path)
    assert train_run(first) == "finished" and not is_locked(run.path)


def test_a_killed_trainers_lock_does_not_block_the_resume(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", run_config(steps=50, batch_size=16))
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from core.run_lock import RunLock; lock = RunLock({str(run.path)!r}); "
         "lock.acquire(); print('held', flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert is_locked(run.path) and lock_holder(run.path) == holder.pid
    run.write_status(dataclasses.replace(RunStatus.now("running", 0, 50), pid=holder.pid))
    assert run.liveness() == "running"
    holder.kill()
    holder.wait()
    assert (run.path / LOCK_NAME).exists() and not is_locked(run.path)  # the file stays, the lock not
    assert run.liveness() == "dead" and prepare_resume(run.path).path == run.path


@pytest.mark.parametrize("kind", ["fifo", "folder", "link"])
def test_a_lock_file_that_is_not_a_file_is_one_line_and_nothing_is_written(tmp_path: Path, kind: str) -> None:
    """A FIFO opened for the lock and truncated was an OSError traceback; a link must not be followed."""
    run = RunDir.create(tmp_path / "run", run_config(steps=50, batch_size=16))
    lock_path = run.path / LOCK_NAME
    target = tmp_path / "elsewhere"
    {"fifo": lambda: os.mkfifo(lock_path), "folder": lock_path.mkdir,
     "link": lambda: lock_path.symlink_to(target)}[kind]()  # fmt: skip
    with pytest.raises(RunError, match=re.escape(str(lock_path))):
        RunLock(run.path).acquire()
    with pytest.raises(RunError, match=r"trainer\.lock should be a regular file"):
        prepare_resume(run.path)
    assert not target.exists() and run.status() is None


# --- resume from the checkpoint ----------------------------------------------------------------------


def test_a_missing_train_state_is_refused_and_no_file_changes(tmp_path: Path, data_root: Path) -> None:
    run, data = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    train_run(open_session(run, CPU, data_root, QUIET, data=data), should_stop=lambda: True)
    run.state_path.unlink()
    before = _files(run)
    with pytest.raises(RunError, match=r"train-state.safetensors is missing, yet its status says step \d+"):
        prepare_resume(run.path, steps=30)
    assert _files(run) == before


def test_a_run_killed_after_its_last_step_resumes_and_finishes(tmp_path: Path, data_root: Path) -> None:
    """status.json says 20 of 20 but the last checkpoint is step 15 (killed before the final one)."""
    run, data = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    assert train_run(open_session(run, CPU, data_root, QUIET, data=data)) == "finished"
    straight = {k: v.clone() for k, v in load_checkpoint(run.model_path)[0].state_dict().items()}
    stranded, _ = create_run(plan_run(TINY), tmp_path / "stranded", data_root=data_root)
    session = open_session(stranded, CPU, data_root, QUIET)
    train_run(session, should_stop=lambda: session.trainer.step >= 15)
    status = stranded.status()
    stranded.write_status(dataclasses.replace(status, state="running", step=20, pid=999_999_999))
    resumed = prepare_resume(stranded.path)  # "already trained 20 of 20" before
    assert train_run(open_session(resumed, CPU, data_root, QUIET)) == "finished"
    assert stranded.status().step == 20 and stranded.status().checkpoint_step == 20
    for name, tensor in load_checkpoint(stranded.model_path)[0].state_dict().items():
        assert torch.equal(tensor, straight[name])


# --- checkpoints that ask too much -------------------------------------------------------------------

REFUSED = r"bad model configuration|the file stores 4 numbers; refusing"


@pytest.mark.parametrize(
    "change",
    [
        {"channels": [4096, 4096, 4096], "num_residual_layers": 20},
        {"num_classes": 10**9},
        {"channels": [1024, 1024, 1024], "num_residual_layers": 16},  # in bounds, yet 4 numbers stored
    ],
)
def test_an_oversized_checkpoint_configuration_is_refused_at_once(tmp_path: Path, change: dict) -> None:
    path = tmp_path / "tiny.safetensors"
    config = UNetConfig().to_dict() | change
    save_file({"w": np.zeros(4, np.float32)}, str(path),
              metadata={"format": FORMAT, "version": VERSION, "unet_config": json.dumps(config)})  # fmt: skip
    assert path.stat().st_size < 1000
    for read in (read_config, load_checkpoint):
        start = time.perf_counter()
        # Refused by core.configs' bounds, or else by the parameters the file does not store.
        with pytest.raises(CheckpointError, match=REFUSED) as refused:
            read(path)
        in_bounds = change.get("channels") == [1024] * 3  # only that one gets past core.configs' bounds
        assert ("the file stores 4 numbers" in str(refused.value)) == in_bounds
        assert time.perf_counter() - start < 1.0


# --- failures recorded -------------------------------------------------------------------------------


def test_a_full_disk_during_a_checkpoint_ends_the_run_failed_and_the_last_checkpoint_loads(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, data = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    session = open_session(run, CPU, data_root, QUIET, data=data)
    real = session_module.save_tensors

    def full_after_step_5(path: Path, *args: object) -> Path:
        if session.trainer.step > 5:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args)

    monkeypatch.setattr(session_module, "save_tensors", full_after_step_5)
    assert train_run(session) == "failed"
    status = run.status()
    assert status.state == "failed" and status.reason.startswith("disk full (OSError: [Errno 28] No space")
    assert status.checkpoint_step == 5 and load_checkpoint(run.model_path)[1]["step"] == "5"
    assert prepare_resume(run.path).path == run.path and not is_locked(run.path)


def test_a_full_disk_during_a_status_write_still_ends_the_run_failed(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The atomic write needs a new file, which a full disk refuses; the status is then rewritten in
    place (its blocks are already there)."""
    run, data = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    session = open_session(run, CPU, data_root, QUIET, data=data)
    real = RunDir.write_status

    def full_after_step_10(self: RunDir, status: RunStatus) -> None:
        if session.trainer.step > 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, status)

    monkeypatch.setattr(RunDir, "write_status", full_after_step_10)
    assert train_run(session) == "failed"
    monkeypatch.undo()
    status = run.status()
    assert status.state == "failed" and status.reason.startswith("disk full")
    assert status.checkpoint_step == 10 and load_checkpoint(run.model_path)[1]["step"] == "10"


@pytest.mark.parametrize("lr", ["1e38", "3e38", "1e300"])
def test_an_absurd_learning_rate_ends_the_run_failed_with_the_reason(
    tmp_path: Path, cli_env: dict, lr: str
) -> None:
    run_dir = tmp_path / "run"
    tiny = ["--preset", "cpu", "--steps", "20", "--batch-size", "16", "--channels", "8,16", "--layers", "1"]
    result = cli("train", *tiny, "--embed-dim", "8", "--lr", lr, "--run-dir", str(run_dir), env=cli_env)
    status = RunDir(run_dir).status()
    assert status is not None and status.state == "failed", result.stderr
    reasons = ("non-finite", "loss became", "overflowed float32, the learning rate is too large")
    assert status.reason and any(reason in status.reason for reason in reasons) and "\n" not in status.reason
    assert result.returncode == 1 and "training failed" in result.stderr.splitlines()[-1]


# --- real trainers -------------------------------------------------------------------------------


TINY_ARGS = ["--preset", "cpu", "--batch-size", "16", "--channels", "8,16", "--layers", "1"]
TINY_ARGS += ["--embed-dim", "8"]


def _trainer(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "train", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_hang_up_stops_a_real_trainer_with_a_checkpoint_at_its_last_step(
    tmp_path: Path, cli_env: dict
) -> None:
    run = RunDir(tmp_path / "run")
    trainer = _trainer(*TINY_ARGS, "--steps", "100000", "--run-dir", str(run.path), env=cli_env)
    _wait(lambda: run.metrics_path.exists() and run.metrics(), "the first record")
    trainer.send_signal(signal.SIGHUP)  # what the terminal sends when the SSH connection drops
    out, err = trainer.communicate(timeout=120)
    status = run.status()
    assert trainer.returncode == 0 and "stopped at step" in out, err
    assert (status.state, status.reason) == ("stopped", "asked to stop (SIGHUP)")
    assert status.checkpoint_step == status.step > 0
    assert load_checkpoint(run.model_path)[1]["step"] == str(status.step)


def test_two_real_trainers_resuming_one_run_at_once_exactly_one_trains(tmp_path: Path, cli_env: dict) -> None:
    run = RunDir(tmp_path / "run")
    assert cli("train", *TINY_ARGS, "--steps", "10", "--run-dir", str(run.path), env=cli_env).returncode == 0
    quiet = ["--preview-every", "0", "--eval-every", "0"]
    both = [_trainer("--resume", str(run.path), "--steps", "600", *quiet, env=cli_env) for _ in range(2)]
    results = [trainer.communicate(timeout=300) for trainer in both]
    codes = sorted(trainer.returncode for trainer in both)
    refused = [err for trainer, (_, err) in zip(both, results, strict=True) if trainer.returncode == 2]
    assert codes == [0, 2], results
    # Refused at the lock, or (when the winner had already begun) at the running check before it.
    assert re.search(r"being trained by another process \(pid \d+\)|is still running \(pid \d+\)", refused[0])
    assert len(refused[0].strip().splitlines()) == 1
    steps = [r["step"] for r in run.metrics() if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 600  # one trainer's records, none twice


def _groups(metadata: dict, change: dict) -> dict:
    groups = json.loads(metadata["param_groups"])
    return {**metadata, "param_groups": json.dumps([{**group, **change} for group in groups])}


def _twice(groups: str) -> str:
    return json.dumps(json.loads(groups) * 2)


DAMAGES = {
    "param_groups a number": lambda t, m: (t, {**m, "param_groups": "5"}),
    "param_groups not JSON": lambda t, m: (t, {**m, "param_groups": "[{"}),
    "one group too many": lambda t, m: (t, {**m, "param_groups": _twice(m["param_groups"])}),
    "betas text": lambda t, m: (t, _groups(m, {"betas": "x"})),
    "betas out of range": lambda t, m: (t, _groups(m, {"betas": [0.9, 2]})),
    "lr infinite": lambda t, m: (t, _groups(m, {"lr": 1e400})),
    "negative step": lambda t, m: (t, {**m, "step": "-3"}),
    "no step": lambda t, m: (t, {k: v for k, v in m.items() if k != "step"}),
    "moment of the wrong shape": lambda t, m: (
        {k: (v[:1] if k.endswith("exp_avg") else v) for k, v in t.items()}, m
    ),
    "a weight missing": lambda t, m: ({k: v for k, v in t.items() if not k.startswith("model.")}, m),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_train_state_is_one_line_naming_the_file(
    tmp_path: Path, data_root: Path, damage: str
) -> None:
    from core.checkpoint import read_tensors, save_tensors

    run, data = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    train_run(open_session(run, CPU, data_root, QUIET, data=data), should_stop=lambda: True)
    tensors, metadata = read_tensors(run.state_path)
    save_tensors(run.state_path, *DAMAGES[damage](tensors, metadata))
    with pytest.raises((CheckpointError, RunError)) as refused:
        open_session(prepare_resume(run.path), CPU, data_root, QUIET)
    message = str(refused.value)
    assert "train-state.safetensors" in message and "\n" not in message and not is_locked(run.path)
