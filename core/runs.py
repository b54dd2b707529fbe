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

Every reader is tolerant of a damaged or hostile folder (a hand edit, a full disk, another program):

- A run file is opened only if it is a regular file (:func:`open_regular`): a FIFO would block the
  reader for ever, a device could be anything. Anything else at its name, a link loop, a file too
  large or not UTF-8 is a one-line :class:`RunError` naming the file; nothing at all is "none yet".
- config.json and status.json are checked key by key (``core.run_files``): one bad value is a
  one-line RunError naming the file and the key.
- metrics.jsonl is read line by line, and a line is skipped, never an error, unless it is a valid
  record (:func:`parse_record`): a JSON object whose ``step`` is a whole number ≥ 0, whose
  ``quality``, if any, is an object, and whose numbers (:data:`RECORD_NUMBERS`), where present, are
  finite (the trainer never logs a non-finite loss: it fails the run instead). So every reader may
  compare ``r["step"]`` and format ``r.get("loss")`` without checking them again.
- A missing or odd ``checkpoints/`` has no snapshots; :func:`find_runs` lists a run whose config.json
  is damaged (its row says ``unreadable``) and skips one that vanishes while it is listed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
from pathlib import Path
from typing import BinaryIO

from core.files import atomic_write_text
from core.run_files import RunConfig, RunError, RunStatus, is_finite, is_whole
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
MAX_JSON_BYTES = 1024**2
"""config.json and status.json are a few kB; a larger one is damage, not read into memory."""
LOG_TAIL_BYTES = 64 * 1024
"""The end of train.log read for its last line (a long run's log can be large)."""
RECORD_NUMBERS = ("loss", "lr", "images_per_sec", "elapsed", "memory_mb")
"""The fields of a metrics record that hold numbers, finite where present."""


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
            # The reason first: a long path would push it out of a notification cut to fit.
            raise RunError(f"cannot create the run directory: {e.strerror or e} ({run.path})") from None
        return run

    def check_writable_files(self) -> None:
        """Refuse, before a trainer writes anything, a run whose files it replaces are not regular files
        or whose folders are not folders (a FIFO as status.json, a file as previews/): one
        :class:`RunError` naming it. A rename cannot replace a folder, and replacing a FIFO or device
        is not ours to do; found at the first write, the run would fail part-way instead."""
        expected = ((self.checkpoints, stat.S_IFDIR), (self.previews, stat.S_IFDIR),
                    (self.status_path, stat.S_IFREG), (self.model_path, stat.S_IFREG),
                    (self.state_path, stat.S_IFREG), (self.metrics_path, stat.S_IFREG),
                    (self.path / LOCK_NAME, stat.S_IFREG))  # fmt: skip
        for path, kind in expected:
            try:  # the lock is opened without following a link (core.run_lock); the others follow one
                found = stat.S_IFMT(os.stat(path, follow_symlinks=path.name != LOCK_NAME).st_mode)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise RunError(f"{path} is unusable ({e.strerror or e})") from None
            if found != kind:
                wanted = "a folder" if kind == stat.S_IFDIR else "a regular file"
                what = FILE_KINDS.get(found, "a regular file")
                raise RunError(f"{path} should be {wanted}, not {what}; move it away to resume the run")

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """An existing run; :class:`RunError` if ``path`` is not one."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"{run.path} is not a folder")
        run.config()  # validates
        return run

    def config(self) -> RunConfig:
        """The run's settings; :class:`RunError` (one line) if config.json is missing or unusable."""
        d = self._read_json(self.config_path)
        if d is None:
            raise RunError(f"{self.path} is not a run (no config.json)")
        return RunConfig.from_dict(d, self.config_path)

    def write_config(self, config: RunConfig) -> None:
        self._write_json(self.config_path, config.to_dict())

    def status(self) -> RunStatus | None:
        """The last status written, or None before the first; :class:`RunError` if it is unusable."""
        d = self._read_json(self.status_path)
        return None if d is None else RunStatus.from_dict(d, self.status_path)

    def write_status(self, status: RunStatus) -> None:
        self._write_json(self.status_path, status.to_dict())

    @staticmethod
    def _read_json(path: Path) -> dict | None:
        """The JSON object in ``path``, None if nothing is there; else :class:`RunError`."""
        data = read_regular(path, MAX_JSON_BYTES)
        if data is None:
            return None
        if not data.strip():
            raise RunError(f"{path} is empty")
        try:
            value = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise RunError(f"{path} is not UTF-8 text") from None
        except ValueError as e:
            raise RunError(f"{path} is unreadable ({e})") from None
        except RecursionError:
            raise RunError(f"{path} is unreadable (nested too deeply)") from None
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
        """Every valid record of metrics.jsonl (:func:`parse_record`; a torn last line and any
        damaged line are skipped); :class:`RunError` if the file is there but cannot be read."""
        data = read_regular(self.metrics_path)
        return [] if data is None else _records(data)

    def snapshot_path(self, step: int) -> Path:
        """Where the snapshot of the weights at ``step`` is (or would be) kept."""
        return self.checkpoints / f"step-{step:06d}.safetensors"

    def snapshots(self) -> list[tuple[int, Path]]:
        """The run's weight snapshots as (step, path), by step; any other file is ignored."""
        try:
            paths = list(self.checkpoints.iterdir())
        except OSError:  # none, a file, a link loop, unreadable: no snapshots
            return []
        found = []
        for path in paths:
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
        return self.liveness_of(self.status())

    def liveness_of(self, status: RunStatus | None) -> str:
        """:meth:`liveness` of the status just read (a reader of both reads the file once)."""
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
            with open_regular(self.log_path) as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - LOG_TAIL_BYTES))
                lines = f.read().decode(errors="replace").strip().splitlines()
        except (OSError, RunError):  # none yet (open_regular's None), or not a file to read
            return ""
        return lines[-1] if lines else ""


def saved_text(status: RunStatus | None) -> str:
    """Where a run would resume from: ``last checkpoint at step k``, or ``no checkpoint yet``."""
    step = status.checkpoint_step if status else None
    return f"last checkpoint at step {step}" if step is not None else "no checkpoint yet"


def gone_text(status: RunStatus | None) -> str:
    """What to say of a run whose process vanished without recording why."""
    return f"process gone (killed or crashed), {saved_text(status)}"


def _records(data: bytes) -> list[dict]:
    """The valid records of ``data``'s lines (:func:`parse_record`); any other line is skipped."""
    return [record for line in data.split(b"\n") if (record := parse_record(line)) is not None]


def parse_record(line: bytes) -> dict | None:
    """The metrics record of one line of metrics.jsonl, or None for a line that is not a valid
    one: not UTF-8, not JSON (a torn last line), not an object, or an object whose ``step`` is not
    a whole number ≥ 0, whose ``quality`` is not an object, or whose :data:`RECORD_NUMBERS` are
    not finite numbers where present (null included: readers take ``get(key, default)``)."""
    try:
        record = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(record, dict):
        return None
    step = record.get("step")
    if not is_whole(step) or step < 0 or not isinstance(record.get("quality", {}), dict):
        return None
    return record if all(is_finite(record[k]) for k in RECORD_NUMBERS if k in record) else None


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
    """Every run directly inside ``folder`` (or ``folder`` itself), newest first (by config.json's
    time). A folder with anything named config.json is a run, a damaged one included (its readers
    say what is wrong); a run removed while the folder is read is left out, never an error."""
    folder = Path(folder)
    try:
        names = sorted(os.listdir(folder))
    except OSError:  # not a folder, or gone
        return []
    dated = []
    for path in (folder, *(folder / name for name in names)):
        when = _config_time(path / "config.json")
        if when is not None:
            dated.append((when, RunDir(path)))
    return [run for _, run in sorted(dated, key=lambda pair: pair[0], reverse=True)]


def _config_time(path: Path) -> float | None:
    """When config.json at ``path`` was last written; None if there is none (gone, or its folder
    is not one). A link is dated by its target, or by itself when that cannot be read."""
    for follow in (True, False):
        try:
            return os.stat(path, follow_symlinks=follow).st_mtime
        except OSError:
            continue
    return None


FILE_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
              stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
              stat.S_IFLNK: "a symbolic link"}  # fmt: skip


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (a link is followed).

    A FIFO would block ``open`` until a writer came (the app and ``runs`` would hang), a device
    could be anything: :class:`RunError` naming the file and what it is instead (a link to nothing
    too); FileNotFoundError when nothing is there. Opened without blocking and checked again
    once open, so that a file swapped for a FIFO in between is refused too."""
    try:
        kind = stat.S_IFMT(os.stat(path).st_mode)
        if kind == stat.S_IFREG:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            f = os.fdopen(fd, "rb")
            kind = stat.S_IFMT(os.fstat(fd).st_mode)
            if kind == stat.S_IFREG:
                return f
            f.close()
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            raise RunError(f"{path} is a link to nothing") from None
        raise FileNotFoundError(path) from None
    except OSError as e:
        raise RunError(f"{path} is unreadable ({e.strerror or e})") from None
    raise RunError(f"{path} is not a regular file ({FILE_KINDS.get(kind, 'not a file')})")


def read_regular(path: Path, limit: int | None = None) -> bytes | None:
    """The bytes of run file ``path`` (:func:`open_regular`), None if nothing is there;
    :class:`RunError` naming it if it holds more than ``limit`` bytes or cannot be read."""
    try:
        with open_regular(path) as f:
            data = f.read(-1 if limit is None else limit + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RunError(f"{path} is unreadable ({e.strerror or e})") from None
    if limit is not None and len(data) > limit:
        raise RunError(f"{path} is too large (over {limit:,} bytes); a run's {path.name} is a few kB")
    return data


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
        """The valid records (:func:`parse_record`) of the lines completed since the last call;
        none while the file is missing or not a regular file (the app polls this: never an error)."""
        try:
            with open_regular(self.path) as f:
                size = os.fstat(f.fileno()).st_size
                self.restarted = size < self.offset
                if self.restarted:
                    self.offset = 0
                f.seek(self.offset)
                chunk = f.read(size - self.offset)
        except (OSError, RunError):
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return _records(complete)
