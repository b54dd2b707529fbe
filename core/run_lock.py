"""One trainer per run: an exclusive OS file lock on ``<run>/trainer.lock``, held for the trainer's life.

``flock`` locks belong to the open file and the kernel drops them when the process dies, however it
dies, so a killed trainer never leaves a stale lock, and two trainers started at the same instant
cannot both hold it (the check and the taking are one system call, unlike reading status.json).
The file holds the holder's pid, for people; signals are sent only to a pid that the kernel says
holds the lock (``/proc/locks``), so a status.json naming another process is never believed.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from core.run_files import RunError

LOCK_NAME = "trainer.lock"


class RunLocked(RunError):
    """Another process trains the run; the message is one line."""


class RunLock:
    """The lock of the run at ``run_path``: :meth:`acquire` once, then held until :meth:`release`
    or the process ends."""

    def __init__(self, run_path: str | os.PathLike) -> None:
        self.path = Path(run_path) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or :class:`RunLocked` naming the holder."""
        fd = _open(self.path)
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO opens (O_RDWR) but is no lock file
            os.close(fd)
            raise RunError(f"{self.path} is not a regular file; move it away to train this run")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = lock_holder(self.path.parent)
            who = f" (pid {holder})" if holder else ""
            message = f"{self.path.parent} is being trained by another process{who}; stop it first"
            raise RunLocked(message) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __del__(self) -> None:
        self.release()  # a lock nobody keeps a handle on is not held (e.g. an abandoned session)


def _open(path: Path) -> int:
    # O_NOFOLLOW: a link planted in the run folder must not make us create or lock another file.
    # O_NONBLOCK: a device there must not block the open.
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        return os.open(path, flags, 0o644)
    except OSError as e:  # a folder, a link (ELOOP), a read-only disk
        raise RunError(f"{path} cannot be opened as the run's lock ({e.strerror or e})") from None


def is_locked(run_path: str | os.PathLike) -> bool:
    """Whether some process holds the run's lock (a probe that takes and drops a shared lock)."""
    path = Path(run_path) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False  # no lock file: no trainer since locks came in
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def lock_holder(run_path: str | os.PathLike) -> int | None:
    """The pid that holds the run's lock, as the kernel reports it (``/proc/locks``); None when
    nobody holds it or it cannot be told."""
    path = Path(run_path) / LOCK_NAME
    try:
        found = os.stat(path, follow_symlinks=False)
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    # "1: FLOCK  ADVISORY  WRITE 12345 fe:00:1234567 0 EOF" (device in hex); waiters are marked "->".
    where = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1:4] == ["FLOCK", "ADVISORY", "WRITE"] and fields[5] == where:
            return int(fields[4]) if fields[4].isdigit() else None
    return None
