"""The run directory: the contract between the trainer, the app and the user.

    <run>/config.json        every setting, versions, data fingerprint
    <run>/metrics.jsonl      one JSON object per logged step
    <run>/status.json        state (running / finished / stopped / failed), pid, step, times
    <run>/checkpoints/model.safetensors        weights to sample from (see core.checkpoint)
    <run>/checkpoints/train-state.safetensors  everything a resume needs
    <run>/previews/step-NNNNNN.png

JSON files are replaced atomically. metrics.jsonl is only appended to, one whole
line per ``write``, and readers skip a torn last line; a resume rewrites it
(atomically) back to the checkpoint's step.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from core.files import atomic_write_text

STATES = ("running", "finished", "stopped", "failed")
RUNS_ENV = "CFG_TUI_RUNS"


def default_runs_folder() -> Path:
    """``$CFG_TUI_RUNS``, else ``runs`` in the current folder."""
    return Path(os.environ.get(RUNS_ENV) or "runs")


class RunError(ValueError):
    """A folder that is not a usable run; the message is one line."""


def pid_alive(pid: int) -> bool:
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
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    status_path = property(lambda self: self.path / "status.json")
    model_path = property(lambda self: self.path / "checkpoints" / "model.safetensors")
    state_path = property(lambda self: self.path / "checkpoints" / "train-state.safetensors")
    previews = property(lambda self: self.path / "previews")

    @classmethod
    def create(cls, path: str | os.PathLike, config: dict) -> RunDir:
        """A new run at ``path``, which must not exist or be an empty folder."""
        run = cls(path)
        # A train.log alone is allowed: the app opens it before it launches the trainer.
        if run.path.exists() and (not run.path.is_dir() or set(os.listdir(run.path)) - {"train.log"}):
            raise RunError(f"{run.path} already exists and is not empty; choose another --run-dir")
        try:
            (run.path / "checkpoints").mkdir(parents=True, exist_ok=True)
            run.previews.mkdir(exist_ok=True)
            run.write_json(run.config_path, config)
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

    def config(self) -> dict:
        return self._read_json(self.config_path)

    def status(self) -> dict:
        return self._read_json(self.status_path) if self.status_path.exists() else {}

    def _read_json(self, path: Path) -> dict:
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise RunError(f"{path} is unreadable ({e})") from None
        if not isinstance(value, dict):
            raise RunError(f"{path} does not hold a JSON object")
        return value

    @staticmethod
    def write_json(path: Path, value: dict) -> None:
        atomic_write_text(path, json.dumps(value, indent=2) + "\n")

    def write_status(self, state: str, step: int, total: int, **extra: object) -> dict:
        now = time.time()
        try:
            started = self.status().get("started", now)
        except RunError:
            started = now
        status = {
            "state": state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "step": step,
            "total_steps": total,
            "started": started,
            "updated": now,
            **extra,
        }
        self.write_json(self.status_path, status)
        return status

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
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def truncate_metrics(self, step: int) -> list[dict]:
        """Keep only the records up to ``step`` (for a resume from that step's checkpoint)."""
        kept = [r for r in self.metrics() if r.get("step", 0) <= step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    def liveness(self) -> str:
        """The status's state, except that a ``running`` run whose process is gone is ``dead``."""
        status = self.status()
        state = status.get("state", "new")
        same_host = status.get("host") == socket.gethostname()
        if state == "running" and same_host and not pid_alive(int(status.get("pid", -1))):
            return "dead"
        return state


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
        records = []
        for line in complete.decode("utf-8", "replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records
