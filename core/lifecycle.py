"""A run's life: create it, check it for a resume, build its trainer, train it, stop it.

    plan = plan_run(RunSettings(preset="cpu", steps=100))        # core.settings
    run, data = create_run(plan, new_run_path("runs", plan.preset))
    train_run(open_session(run, plan.device, data=data))         # "finished" / "stopped" / "failed"
    ...
    run = prepare_resume(run.path, steps=200)                    # later, maybe in another process
    train_run(open_session(run, plan.device))

The command line (``cfg-tui train``) and the app are thin layers over these functions;
every refusal is a one-line :class:`RunError` or :class:`SettingsError`.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import platform
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import torch

from core import distributed
from core.checkpoint import CheckpointError, read_metadata, read_tensors
from core.data import ImageBatches, default_data_root, load_split
from core.distributed import ONE_PROCESS, Ranks
from core.run_files import DataInfo, RunConfig
from core.run_lock import RunLock, is_locked, lock_holder
from core.runs import RunDir, RunError, RunStatus
from core.session import SessionOptions, TrainingSession, check_at
from core.settings import RunPlan, SettingsError
from core.trainer import CFGTrainer, new_model

Log = Callable[[str], None]
Prepared = tuple[RunDir, ImageBatches | None]
"""A run ready to train, and its training data when they were just read (a new run)."""


def _quiet(message: str) -> None:
    pass


def create_run(
    plan: RunPlan,
    path: str | os.PathLike,
    dataset: str = "mnist",
    data_root: Path | None = None,
    log: Log = _quiet,
    command: list[str] | None = None,
) -> tuple[RunDir, ImageBatches]:
    """Read the training data, check the batch against them, and write the new run's config.json.

    ``command`` is recorded as what made the run (default: this process's command line).
    Returns the run and the data just read (so that training need not read them again)."""
    root = data_root or default_data_root()
    data, fingerprint = load_split(dataset, "train", root, log=log)
    batch, processes = plan.train.batch_size, plan.processes
    if batch > len(data):
        raise SettingsError(f"batch size {batch} exceeds the {len(data)} training images")
    if batch < processes:
        raise SettingsError(f"batch size {batch} is less than one image per process ({processes} processes)")
    config = RunConfig(
        preset=plan.preset,
        model=plan.model,
        train=plan.train,
        data=DataInfo(dataset, str(root), len(data), fingerprint),
        device=str(plan.device),
        processes=processes,
        versions={"python": platform.python_version(), "torch": torch.__version__, "cfg_tui": _version()},
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        command=list(sys.argv if command is None else command),
    )
    run = RunDir.create(path, config)
    processes_note = f", {processes} processes" if processes > 1 else ""
    log(f"run: {run.path} (preset {plan.preset}, {plan.train.steps} steps{processes_note})")
    return run, data


def prepare_resume(path: str | os.PathLike, steps: int | None = None) -> RunDir:
    """A run that may continue: no trainer holds it, it is not done (unless ``steps`` extends it,
    which is saved). Where it stands is read from its checkpoint, not from status.json: a run
    killed after its last step but before its last checkpoint resumes and finishes, and a run that
    checkpointed but lost its train-state is refused (never silently started afresh)."""
    run = RunDir.open(path)
    holder = lock_holder(run.path)
    if is_locked(run.path):
        raise RunError(f"{run.path} is still running (pid {holder or '?'}); stop it first")
    config = run.config()
    if steps is not None:
        try:
            config = config.with_steps(steps)
        except ValueError as e:
            raise SettingsError(str(e)) from None
    run.check_writable_files()  # before any write: a FIFO as status.json, a file as previews/
    run.metrics()  # a metrics.jsonl that cannot be read is refused before any write
    done = checkpoint_step(run)
    if done >= config.train.steps:
        raise RunError(
            f"{run.path} has finished: it has already trained {done} of {config.train.steps} steps; "
            f"pass --steps N with N > {done} to train further"
        )
    if steps is not None:
        run.write_config(config)
    return run


def checkpoint_step(run: RunDir) -> int:
    """The step the run resumes from: its train-state's (0 for a run that never checkpointed);
    :class:`RunError` naming the file when the run checkpointed and that file is missing or unreadable."""
    if not run.state_path.exists():
        try:
            status = run.status()
        except RunError:
            status = None
        saved = status.checkpoint_step if status else None
        if saved is not None or run.model_path.exists() or run.snapshots():
            said = f"its status says step {saved} was checkpointed" if saved is not None else "it has weights"
            raise RunError(f"{run.state_path} is missing, yet {said}: refusing to start it afresh")
        return 0
    try:
        step = int(read_metadata(run.state_path)["step"])
    except (KeyError, ValueError, OverflowError):
        raise RunError(f"{run.state_path} has no usable step; it cannot resume from it") from None
    if step < 0:
        raise RunError(f"{run.state_path} says step {step}; it cannot resume from it")
    return step


def build_trainer(
    run: RunDir,
    device: torch.device,
    data_root: Path | None = None,
    ranks: Ranks = ONE_PROCESS,
    data: ImageBatches | None = None,
    log: Log = _quiet,
    phase: Log = _quiet,
) -> CFGTrainer:
    """The run's trainer on ``device``, at its last checkpoint if it has one.

    ``data``, when given, is the run's training data just read; else they are read (from
    ``data_root``, else the run's own) and must have the fingerprint the run started with.
    ``phase`` is told each step of the way ("building the model", …)."""
    config = run.config()
    if data is None:
        root = data_root or Path(config.data.root or default_data_root())
        data, fingerprint = load_split(config.data.dataset, "train", root, device=device, log=log)
        if fingerprint != config.data.fingerprint:
            raise RunError(
                f"the {config.data.dataset} training data differ from the ones this run started with"
            )
    phase("building the model")
    trainer = CFGTrainer(new_model(config.model, config.train.seed), data.to(device), config.train, ranks)
    if run.state_path.exists():
        phase("loading the checkpoint")
        tensors, metadata = read_tensors(run.state_path)
        try:
            trainer.load_state(tensors, metadata)
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            reason = str(e).splitlines()[0] or type(e).__name__
            raise CheckpointError(f"{run.state_path} does not fit this run ({reason})") from None
    return trainer


def open_session(
    run: RunDir,
    device: torch.device,
    data_root: Path | None = None,
    options: SessionOptions | None = None,
    ranks: Ranks = ONE_PROCESS,
    data: ImageBatches | None = None,
    log: Log = _quiet,
) -> TrainingSession:
    """Rank 0's view of the run: its trainer (at the last checkpoint), metrics cut back to it.

    From here on status.json says the run is running and what it is doing; an exception on the
    way ends it as ``failed`` with the reason (:func:`failures_recorded`)."""
    lock = RunLock(run.path)
    lock.acquire()  # before any write: a second trainer of this run stops here, whatever the timing
    try:
        _checkpoints_folder(run)
        with failures_recorded(run):
            mark_phase(run, "loading data" if data is None else "building the model")
            trainer = build_trainer(run, device, data_root, ranks, data, log, lambda p: mark_phase(run, p))
    except BaseException:
        lock.release()  # this process may live on (the app, a test): the run is not being trained
        raise
    records = run.truncate_metrics(trainer.step)
    if trainer.step:
        log(f"run: {run.path} resumed at step {trainer.step} of {trainer.config.steps}")
    # The clock goes on from the last record that has one (a record may lack ``elapsed``).
    elapsed = next((r["elapsed"] for r in reversed(records) if "elapsed" in r), 0.0)
    options = options or SessionOptions()
    session = TrainingSession(run, trainer, options, elapsed=elapsed, data_root=data_root, log=log)
    session.lock = lock  # held while the session lives; train_run releases it at the end
    return session


def _checkpoints_folder(run: RunDir) -> None:
    """The run's checkpoints folder, made if missing (a new run from a bare config.json)."""
    try:
        run.checkpoints.mkdir(exist_ok=True)
    except OSError as e:
        raise RunError(f"{run.checkpoints} cannot be made: {e.strerror or e}") from None
    if not run.checkpoints.is_dir():
        raise RunError(f"{run.checkpoints} is not a folder")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, ``kill`` and a hang-up (the SSH connection dropped): each stops the run after a
checkpoint rather than killing it mid-step."""


@contextmanager
def stop_signals() -> Iterator[Callable[[], str | None]]:
    """While inside, the :data:`STOP_SIGNALS` ask training to stop at the next step, checkpoint
    first; yields a function returning the first such signal's name (``SIGTERM``), or None."""
    received: list[str] = []

    def ask_to_stop(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in STOP_SIGNALS}
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def failure_reason(error: BaseException) -> str:
    """One line saying why training raised ``error``: out of memory and a full disk by name,
    else the exception's type and the first line of its message."""
    said = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}".rstrip(": ")
    if isinstance(error, MemoryError | torch.OutOfMemoryError) or "out of memory" in said.lower():
        return f"out of memory ({said})"
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"disk full ({said})"
    if isinstance(error, RuntimeError) and "overflow" in said:  # e.g. Adam's step with lr 1e38
        return f"numbers overflowed float32, the learning rate is too large ({said})"
    return said


def mark_phase(run: RunDir, phase: str) -> None:
    """status.json says this process runs ``run`` and is ``phase`` (starting up), keeping what
    the last status said of its steps and checkpoint."""
    try:
        previous = run.status()
    except RunError:
        previous = None  # unreadable: replaced by this process's own
    now = RunStatus.now("running", 0, run.config().train.steps, phase=phase)
    if previous is not None:
        now = dataclasses.replace(
            previous, state="running", pid=now.pid, host=now.host, updated=now.updated,
            total_steps=now.total_steps, reason=None, phase=phase,
        )  # fmt: skip
    run.write_status(now)


@contextmanager
def failures_recorded(run: RunDir) -> Iterator[None]:
    """An exception inside ends the run as ``failed`` with :func:`failure_reason` in status.json
    (what it said of steps and checkpoint kept), then goes on up."""
    try:
        yield
    except Exception as e:
        with suppress(Exception):  # e.g. the disk is full: the exception still says why
            status = run.status()
            if status is not None:
                failed = dataclasses.replace(status, state="failed", reason=failure_reason(e), phase=None)
                run.write_status(failed)
        raise


def train_run(
    session: TrainingSession,
    should_stop: Callable[[], bool] | None = None,
    on_log: Callable[[dict], None] = lambda record: None,
) -> str:
    """Train to the end, or until a stop signal (or ``should_stop()``); returns the final state.

    An exception in the loop ends the run as ``failed`` with :func:`failure_reason` in status.json
    (and ``session.failure``), the last checkpoint as it was."""
    with stop_signals() as signalled:
        stop = (lambda: signalled() is not None) if should_stop is None else (
            lambda: signalled() is not None or should_stop()
        )

        def stop_reason() -> str:
            name = signalled()
            return f"asked to stop ({name})" if name else "asked to stop"

        try:
            return session.run_until_done(stop, on_log, stop_reason)
        except Exception as e:
            reason = failure_reason(e)
            try:
                session.fail(reason)
            except OSError:
                session.failure = reason  # e.g. the disk is full: stderr still says why
            return "failed"
        finally:
            if session.lock is not None:
                session.lock.release()


def train_as_rank(
    ranks: Ranks,
    device_type: str,
    prepare: Callable[[], Prepared],
    train_main: Callable[[TrainingSession], None],
    data_root: Path | None = None,
    options: SessionOptions | None = None,
    log: Log = _quiet,
) -> bool:
    """One of several processes: rank 0 prepares the run (``prepare``) and trains it with
    ``train_main``, writing the run directory; every other rank trains alongside.

    False on the other ranks when rank 0 could not prepare the run (rank 0 raised, saying why)."""
    device = distributed.start(ranks, device_type)
    try:
        path, data = None, None
        if ranks.is_main:
            try:
                run, data = prepare()
                path = run.path
            finally:
                distributed.broadcast(path, device)  # None tells the others to give up
        else:
            path = distributed.broadcast(None, device)
            if path is None:
                return False
        run = RunDir.open(path)
        if ranks.is_main:
            train_main(open_session(run, device, data_root, options, ranks, data, log))
        else:
            trainer = build_trainer(run, device, data_root, ranks, log=log)
            follow(trainer, options or SessionOptions())
    finally:
        distributed.stop()
    return True


def follow(trainer: CFGTrainer, options: SessionOptions) -> None:
    """Train as a rank other than 0: the same steps, reads and collectives as rank 0's session
    (:func:`core.session.check_at`), writing nothing."""

    def failed(step: int) -> bool:
        return check_at(trainer, options, step)[1] is not None

    with stop_signals() as signalled:
        trainer.train(
            callback=failed, should_stop=lambda: signalled() is not None, agree_every=options.log_every
        )
    check_at(trainer, options, trainer.step, final=True)


def stop_trainer(run: RunDir) -> int:
    """Ask the run's own trainer to checkpoint and stop (SIGINT, as Ctrl-C would); its pid.

    Only the process that the kernel says holds the run's lock (:mod:`core.run_lock`), and whose
    command line is a cfg-tui trainer, is signalled: never what status.json merely names, never
    pid 1 or below, never a process group. Else :class:`RunError` saying why, nothing signalled."""
    name = run.path.name
    pid = lock_holder(run.path)
    if pid is None:
        raise RunError(f"{name} has no trainer running here (none holds its lock); nothing signalled")
    if pid <= 1 or not is_trainer(pid):
        raise RunError(f"{name}: pid {pid} holds its lock but is not a cfg-tui trainer; nothing signalled")
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        raise RunError(f"{name}: its trainer (pid {pid}) has just ended; nothing signalled") from None
    return pid


def ask_to_stop(run: RunDir) -> bool:
    """:func:`stop_trainer`, as whether a trainer was asked."""
    try:
        stop_trainer(run)
    except RunError:
        return False
    return True


def is_trainer(pid: int) -> bool:
    """Whether process ``pid`` runs ``cfg-tui train`` (its command line, from /proc)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = [Path(a.decode(errors="replace")).name for a in args]
    return "train" in words and any(w in ("cfg-tui", "tui.cli") for w in words)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cfg-tui")
    except PackageNotFoundError:
        return "unknown"
