"""A run's life through the core API, in this process: create, train, stop, resume, extend."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from core.lifecycle import create_run, open_session, prepare_resume, train_run
from core.runs import RunDir, RunError, RunStatus
from core.session import SessionOptions
from core.settings import RunSettings, SettingsError, new_run_path, plan_run

CPU = torch.device("cpu")
QUIET = SessionOptions(checkpoint_every=10, preview_every=0, log_every=5)
TINY = RunSettings(
    preset="cpu", steps=60, batch_size=16, channels=(8, 16), layers=1, embed_dim=8, device="cpu"
)


def _train(run: RunDir, data_root: Path, **kwargs: object) -> str:
    return train_run(open_session(run, CPU, data_root, QUIET), **kwargs)


def test_a_run_stopped_at_step_k_resumes_bit_identical_to_an_uninterrupted_one(
    tmp_path: Path, data_root: Path
) -> None:
    plan = plan_run(TINY)
    straight, data = create_run(plan, tmp_path / "straight", data_root=data_root)
    assert train_run(open_session(straight, CPU, data_root, QUIET, data=data)) == "finished"

    stopped, _ = create_run(plan, tmp_path / "stopped", data_root=data_root)
    session = open_session(stopped, CPU, data_root, QUIET)
    starts: list[float] = []

    def stop_at_23() -> bool:
        status = stopped.status()
        starts.extend([status.started] if status else [])
        return session.trainer.step >= 23

    assert train_run(session, should_stop=stop_at_23) == "stopped"
    status = stopped.status()
    assert status is not None and (status.state, status.step, status.checkpoint_step) == ("stopped", 23, 23)
    assert len(starts) > 3 and set(starts) == {status.started}  # one start, written at every log

    resumed = open_session(prepare_resume(stopped.path), CPU, data_root, QUIET)
    assert resumed.trainer.step == 23 and [r["step"] for r in stopped.metrics()][-1] == 23
    assert train_run(resumed) == "finished"
    assert stopped.status().started == status.started  # a resumed run keeps when it first started

    ours, theirs = resumed.trainer, open_session(straight, CPU, data_root, QUIET).trainer
    assert ours.step == theirs.step == 60
    for a, b in zip(ours.model.state_dict().values(), theirs.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # weights and BatchNorm buffers
    adam_a, adam_b = ours.optimizer.state_dict(), theirs.optimizer.state_dict()
    assert adam_a["param_groups"] == adam_b["param_groups"]
    for index, moments in adam_a["state"].items():
        theirs_moments = adam_b["state"][index]
        assert all(torch.equal(moments[k], theirs_moments[k]) for k in ("step", "exp_avg", "exp_avg_sq"))
    steps = [r["step"] for r in stopped.metrics()]
    assert steps == sorted(set(steps)) and steps[-1] == 60  # no step logged twice


def test_resume_refuses_a_finished_run_unless_extended(tmp_path: Path, data_root: Path) -> None:
    run, data = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    train_run(open_session(run, CPU, data_root, QUIET, data=data))
    with pytest.raises(RunError, match="has finished: it has already trained 60 of 60 steps"):
        prepare_resume(run.path)
    with pytest.raises(SettingsError, match=r"^steps must be at least 1, not 0$"):
        prepare_resume(run.path, steps=0)
    assert run.config().train.steps == 60  # a refused extension saved nothing
    prepare_resume(run.path, steps=70)
    assert run.config().train.steps == 70
    assert _train(run, data_root) == "finished" and run.status().step == 70


def test_a_run_refuses_data_that_differ_from_its_own(
    tmp_path: Path, data_root: Path, bars_data_root: Path
) -> None:
    run, _ = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    with pytest.raises(RunError, match="training data differ from the ones this run started with"):
        open_session(run, CPU, bars_data_root)


def test_new_run_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "strftime", lambda fmt: "20261130-120000")
    fresh = new_run_path(tmp_path, "cpu")
    assert fresh == tmp_path / "20261130-120000-cpu"
    fresh.mkdir()
    assert new_run_path(tmp_path, "cpu") == tmp_path / "20261130-120000-cpu-2"  # two in one second
    assert new_run_path(tmp_path, "cpu", " mine ") == tmp_path / "mine"
    (tmp_path / "mine").mkdir()
    bad = [("mine", "already exists"), ("a/b", "plain folder name"), ("..", "plain folder name")]
    for name, message in bad:
        with pytest.raises(SettingsError, match=message):
            new_run_path(tmp_path, "cpu", name)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (RunSettings(preset="huge", device="cpu"), "preset must be auto, seed, cpu, gpu, not 'huge'"),
        (RunSettings(device="tpu"), "device must be one of auto, cpu, cuda, not 'tpu'"),
        (RunSettings(device="cpu", schedule="cubic"), "schedule must be one of linear, cosine, not 'cubic'"),
        (RunSettings(device="cpu", ema_decay=1.0), r"EMA decay must be in \[0, 1\) \(0 = off\), not 1.0"),
        (RunSettings(device="cpu", embed_dim=3), "t_embed_dim must be even"),
        (RunSettings(device="cpu", processes=0), "nproc must be at least 1, not 0"),
    ],
)
def test_plan_run_names_the_bad_setting(settings: RunSettings, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        plan_run(settings)
    assert "\n" not in str(info.value)


def test_plan_run_applies_the_overrides_to_the_preset() -> None:
    plan = plan_run(TINY)
    assert (plan.preset, plan.device, plan.processes) == ("cpu", CPU, 1)
    assert plan.model.channels == (8, 16) and plan.model.t_embed_dim == plan.model.y_embed_dim == 8
    assert (plan.train.steps, plan.train.batch_size, plan.train.lr) == (60, 16, 1e-3)


def test_a_stop_signal_is_named_in_the_status_and_a_hang_up_checkpoints(
    tmp_path: Path, data_root: Path
) -> None:
    """SIGHUP (the SSH connection dropped) stops like SIGTERM: a checkpoint, ``stopped``, and why."""
    run, data = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    session = open_session(run, CPU, data_root, QUIET, data=data)

    def hang_up_at_12() -> bool:
        if session.trainer.step == 12:
            os.kill(os.getpid(), signal.SIGHUP)
        return False

    assert train_run(session, should_stop=hang_up_at_12) == "stopped"
    status = run.status()
    assert status is not None and (status.state, status.checkpoint_step) == ("stopped", status.step)
    assert 12 <= status.step < 60 and status.reason == "asked to stop (SIGHUP)"
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # the handler is put back


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (MemoryError(), "out of memory (MemoryError)"),
        (OSError(errno.ENOSPC, "No space left on device"), "disk full (OSError: [Errno 28] No space left"),
        (RuntimeError("cuDNN error: something\nmore lines"), "RuntimeError: cuDNN error: something"),
    ],
)
def test_an_exception_in_the_loop_ends_the_run_failed_with_its_reason_and_the_checkpoint_kept(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, reason: str
) -> None:
    run, data = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    session = open_session(run, CPU, data_root, QUIET, data=data)
    original = session.checkpoint

    def checkpoint_then_fail() -> None:
        if session.trainer.step >= 20:
            raise error
        original()

    monkeypatch.setattr(session, "checkpoint", checkpoint_then_fail)
    assert train_run(session) == "failed"
    status = run.status()
    assert status is not None and status.state == "failed" and status.reason is not None
    assert status.reason.startswith(reason) and "\n" not in status.reason
    assert status.checkpoint_step == 10 and session.failure == status.reason
    assert prepare_resume(run.path).state_path.is_file()  # a failed run resumes from step 10


def test_a_starting_trainer_names_its_phases_in_the_status(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, _ = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    written: list[tuple[str, str | None]] = []
    write = RunDir.write_status

    def recording(self: RunDir, status: RunStatus) -> None:
        written.append((status.state, status.phase))
        write(self, status)

    monkeypatch.setattr(RunDir, "write_status", recording)
    train_run(open_session(run, CPU, data_root, QUIET))
    phases = [phase for _, phase in written]
    assert phases[:3] == ["loading data", "building the model", "first steps (the first record is at step 5)"]
    assert all(state == "running" for state, _ in written[:3])
    assert phases[3:] == [None] * (len(phases) - 3)  # from the first record on: training
    assert written[-1] == ("finished", None)


def test_a_trainer_that_fails_while_starting_says_why(
    tmp_path: Path, data_root: Path, bars_data_root: Path
) -> None:
    run, _ = create_run(plan_run(TINY), tmp_path / "run", data_root=data_root)
    with pytest.raises(RunError, match="differ"):
        open_session(run, CPU, bars_data_root, QUIET)
    status = run.status()
    assert status is not None and status.state == "failed"
    assert status.reason is not None and "training data differ" in status.reason
