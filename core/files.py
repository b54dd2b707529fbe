"""Atomic file writes: a temporary file in the same folder, fsync, then rename over the target.

Readers (the app tailing a run, a resumed run) never see a torn file: they see the old
content or the new, nothing in between. The new file gets the permissions a plain ``open`` would
give it: those of the file it replaces, else 0666 less the umask (the temporary file is 0600).
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path. Raises OSError if not writable."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), _mode_for(path))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _mode_for(path: Path) -> int:
    """The permission bits ``path`` keeps (an existing regular file's) or gets (0666 & ~umask)."""
    try:
        existing = path.stat()
        if stat.S_ISREG(existing.st_mode):
            return stat.S_IMODE(existing.st_mode)
    except OSError:
        pass
    with _UMASK_LOCK:  # the umask can only be read by setting it
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | os.PathLike, name: str = "output") -> None:
    """Refuse, before any work is done, an output path that cannot be written (ValueError naming
    ``name``, the option or field it came from)."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise ValueError(f"{name} {path} is a folder, not a file name")
    if not folder.is_dir():
        raise ValueError(f"{name} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{name} {path}: the folder {folder} is not writable")
