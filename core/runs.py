"""The run directory: the contract between the trainer, the app and the user.

    <run>/config.json        every setting, versions, data fingerprint
    <run>/metrics.jsonl      one JSON object per logged step (loss, lr, images/s, elapsed, memory),
                             and now and then a quality record: step, elapsed, ``quality``
    <run>/status.json        state (running / finished / stopped / failed), pid, step, times
    <run>/checkpoints/model.safetensors        weights to sample from (see core.checkpoint)
    <run>/checkpoints/train-state.safetensors  everything a resume needs
    <run>/checkpoints/step-NNNNNN.safetensors  a snapshot of the weights to sample from at each
                                               checkpoint (an earlier, weaker model: autoguidance)
    <run>/previews/step-NNNNNN.png
    <run>/train.log          the output of a trainer the app launched

config.json and status.json are read and written only as :class:`RunConfig` and
:class:`RunStatus` (``core.run_files``).

JSON files are replaced atomically. metrics.jsonl is only appended to, one whole
line per ``write``, and readers skip a torn last line; a resume rewrites it
(atomically) back to the checkpoint's step, and removes the snapshots after that step.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

from core.files import atomic_write_text
from core.run_files import RunConfig, RunError, RunStatus
from core.run_lock import LOCK_NAME, is_locked

RUNS_ENV = "CFG_TUI_RUNS"
LIVENESS = ("new", "running", "dead", "finished", "stopped", "failed")
"""What a run is doing: its status's state, ``new`` before the first status, ``dead`` for a
``running`` run whose process is gone."""

__all__ = ["RunConfig", "RunDir", "RunError", "RunStatus"]

SNAPSHOT_NAME = re.compile(r"step-(\d{6,})\.safetensors")
"""A snapshot's file name; the step has at least six digits (more past step 999,999)."""
STEPS_SHOWN = 10
"""Steps a one-line list of snapshot steps names before it elides the middle."""


def default_runs_folder() -> Path:
    """``$CFG_TUI_RUNS``, else ``runs`` in the current folder."""
    return Path(os.environ.get(RUNS_ENV) or "runs")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie; never true for pid 0 or below
    (``kill`` would mean a process group, or every process, there)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed but not yet reaped by its parent) is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class RunDir:
    """A run directory's paths, and typed reads and atomic writes of its files."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    status_path = property(lambda self: self.path / "status.json")
    model_path = property(lambda self: self.path / "checkpoints" / "model.safetensors")
    state_path = property(lambda self: self.path / "checkpoints" / "train-state.safetensors")
    previews = property(lambda self: self.path / "previews")
    checkpoints = property(lambda self: self.path / "checkpoints")
    log_path = property(lambda self: self.path / "train.log")

    @classmethod
    def create(cls, path: str | os.PathLike, config: RunConfig) -> RunDir:
        """A new run at ``path``, which must not exist or be an empty folder."""
        run = cls(path)
        if run.path.exists() and (not run.path.is_dir() or os.listdir(run.path)):
            raise RunError(f"{run.path} already exists and is not empty; choose another run folder")
        try:
            (run.path / "checkpoints").mkdir(parents=True, exist_ok=True)
            run.previews.mkdir(exist_ok=True)
            run.write_config(config)
        except OSError as e:
            raise RunError(f"cannot create the run directory {run.path}: {e.strerror or e}") from None
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """An existing run; :class:`RunError` if ``path`` is not one."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"{run.path} is not a folder")
        if not run.config_path.is_file():
            raise RunError(f"{run.path} is not a run (no config.json)")
        run.config()  # validates
        return run

    def config(self) -> RunConfig:
        return RunConfig.from_dict(self._read_json(self.config_path), self.config_path)

    def write_config(self, config: RunConfig) -> None:
        self._write_json(self.config_path, config.to_dict())

    def status(self) -> RunStatus | None:
        """The last status written, or None before the first."""
        if not self.status_path.exists():
            return None
        return RunStatus.from_dict(self._read_json(self.status_path), self.status_path)

    def write_status(self, status: RunStatus) -> None:
        self._write_json(self.status_path, status.to_dict())

    def _read_json(self, path: Path) -> dict:
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise RunError(f"{path} is unreadable ({e})") from None
        if not isinstance(value, dict):
            raise RunError(f"{path} does not hold a JSON object")
        return value

    @staticmethod
    def _write_json(path: Path, value: dict) -> None:
        atomic_write_text(path, json.dumps(value, indent=2) + "\n")

    def append_metrics(self, record: dict) -> None:
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def metrics(self) -> list[dict]:
        """Every complete record of metrics.jsonl (a torn last line is skipped)."""
        if not self.metrics_path.exists():
            return []
        return _records(self.metrics_path.read_text())

    def snapshot_path(self, step: int) -> Path:
        """Where the snapshot of the weights at ``step`` is (or would be) kept."""
        return self.checkpoints / f"step-{step:06d}.safetensors"

    def snapshots(self) -> list[tuple[int, Path]]:
        """The run's weight snapshots as (step, path), by step; any other file is ignored."""
        if not self.checkpoints.is_dir():
            return []
        found = []
        for path in self.checkpoints.iterdir():
            match = SNAPSHOT_NAME.fullmatch(path.name)
            # Only the names snapshot_path writes: step-0000500 is not step 500's snapshot.
            if match and path == self.snapshot_path(int(match[1])) and path.is_file():
                found.append((int(match[1]), path))
        return sorted(found)

    def remove_snapshots_after(self, step: int) -> list[int]:
        """Remove the snapshots of steps after ``step`` (a resume from that step's checkpoint
        trains them again, maybe differently); returns the steps removed."""
        removed = []
        for later, path in self.snapshots():
            if later > step:
                path.unlink(missing_ok=True)
                removed.append(later)
        return removed

    def truncate_metrics(self, step: int) -> list[dict]:
        """Keep only the records (of either kind) up to ``step``, for a resume from that step's
        checkpoint: what was measured after it is measured again."""
        kept = [r for r in self.metrics() if r.get("step", 0) <= step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    def liveness(self) -> str:
        """One of :data:`LIVENESS`; :class:`RunError` if status.json is unreadable."""
        status = self.status()
        if status is None:
            return "new"
        if status.state == "running" and status.on_this_host and not self._trainer_alive(status):
            return "dead"
        return status.state

    def _trainer_alive(self, status: RunStatus) -> bool:
        """A process holds the run's trainer lock; for a run from before the lock, its pid lives."""
        if (self.path / LOCK_NAME).exists():
            return is_locked(self.path)
        return pid_alive(status.pid)

    def end_reason(self, returncode: int) -> str:
        """Why this run's trainer ended with ``returncode`` (as Popen reports it: minus the signal's
        number when a signal killed it): the signal and the last checkpoint, the reason its status
        records, else the last line of its log."""
        try:
            status = self.status()
        except RunError:
            status = None
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = "a signal"
            # SIGKILL is kill -9 or the kernel's out-of-memory killer: the process cannot tell which.
            oom = " (kill -9, or the kernel when memory ran out)" if -returncode == signal.SIGKILL else ""
            return f"killed by {name} (signal {-returncode}){oom}; {saved_text(status)}"
        if status is not None and status.state == "failed" and status.reason:
            return status.reason
        return self.last_log_line() or f"cfg-tui train exited with code {returncode}; {saved_text(status)}"

    def last_log_line(self) -> str:
        """The last non-empty line of train.log (what a trainer that exited early said)."""
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""


def saved_text(status: RunStatus | None) -> str:
    """Where a run would resume from: ``last checkpoint at step k``, or ``no checkpoint yet``."""
    step = status.checkpoint_step if status else None
    return f"last checkpoint at step {step}" if step is not None else "no checkpoint yet"


def gone_text(status: RunStatus | None) -> str:
    """What to say of a run whose process vanished without recording why."""
    return f"process gone (killed or crashed), {saved_text(status)}"


def _records(text: str) -> list[dict]:
    """The JSON objects of complete lines; a torn or foreign line is skipped."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def is_quality(record: dict) -> bool:
    """Whether a metrics record is a quality record (:mod:`core.quick_eval`), not a loss record."""
    return isinstance(record.get("quality"), dict)


def loss_records(records: list[dict]) -> list[dict]:
    """The loss records of ``records``: every reader of loss, lr and images/s wants these only."""
    return [r for r in records if not is_quality(r)]


def quality_records(records: list[dict]) -> list[dict]:
    """The quality records of ``records``, in order."""
    return [r for r in records if is_quality(r)]


def find_runs(folder: str | os.PathLike) -> list[RunDir]:
    """Every run directly inside ``folder`` (or ``folder`` itself), newest first."""
    folder = Path(folder)
    candidates = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())] if folder.is_dir() else []
    runs = [RunDir(p) for p in candidates if (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.config_path.stat().st_mtime, reverse=True)


def checkpoint_file(path: str | os.PathLike | None) -> Path:
    """The weights file meant by ``path``: the bundled model for None, a run's latest
    weights for a run directory, else the file itself."""
    if path is None:
        from core.assets import BUNDLED_MODEL

        return BUNDLED_MODEL
    path = Path(path)
    if not path.is_dir():
        return path
    run = RunDir.open(path)
    if not run.model_path.is_file():
        raise RunError(f"{run.path} has no checkpoint yet")
    return run.model_path


def snapshot_file(run_path: str | os.PathLike, step: int) -> Path:
    """The run's snapshot of the weights at ``step``; :class:`RunError` (one line, naming the
    steps it has) when there is none."""
    run = RunDir.open(run_path)
    path = run.snapshot_path(step)
    if path.is_file():
        return path
    steps = [s for s, _ in run.snapshots()]
    has = f"its snapshots are at steps {steps_text(steps)}" if steps else "it has no snapshots"
    raise RunError(f"{run.path} has no snapshot at step {step}; {has}")


def steps_text(steps: list[int], shown: int = STEPS_SHOWN) -> str:
    """``500, 1000, 1500``; past ``shown`` steps, the first and last few with ``…`` between."""
    if len(steps) > shown:
        head = (shown + 1) // 2
        return ", ".join([*map(str, steps[:head]), "…", *map(str, steps[head - shown :])])
    return ", ".join(map(str, steps))


class MetricsTail:
    """Reads the records appended to a metrics.jsonl since the last call (complete lines only).

    A file that got shorter (a resume rewrites it) is read again from the start, and
    :attr:`restarted` is set so the reader can drop what it had.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.offset = 0
        self.restarted = False

    def read_new(self) -> list[dict]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        self.restarted = size < self.offset
        if self.restarted:
            self.offset = 0
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return _records(complete.decode("utf-8", "replace"))
