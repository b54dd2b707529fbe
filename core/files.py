"""Atomic file writes: a temporary file in the same folder, fsync, then rename over the target.

Readers (the app tailing a run, a resumed run) never see a torn file: they see the old
content or the new, nothing in between. The new file gets the permissions a plain ``open`` would
give it: those of the file it replaces, else 0666 less the umask (the temporary file is 0600).

Only a regular file, or a new one, is ever replaced: a symlink is followed and its target written
(the link stays a link); a device, FIFO, socket or folder at the path is refused (as root, a rename
would replace ``/dev/full`` itself). :func:`check_writable` and :func:`check_folder` refuse a user's
output path before any work is done; :func:`writing` turns the disk's refusal (full, gone, I/O error)
into one line naming the option.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.settings import SettingsError

_UMASK_LOCK = threading.Lock()


class OutputError(SettingsError):
    """An output path that cannot be written, or whose write failed; one line naming the option."""


class InputError(SettingsError):
    """An input path that is not a regular file to read; one line naming the option."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path. Raises OSError if not writable, and
    FileExistsError if something other than a regular file is there."""
    path = Path(path)
    target = _target(path)
    existing = _existing(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), _mode_for(existing))
            _keep_owner(f.fileno(), existing)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _target(path: Path) -> Path:
    """The file a write to ``path`` changes: a symlink's final target (a dangling link's too), as
    ``open`` would write it; else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _existing(target: Path) -> os.stat_result | None:
    """``target``'s status if it is there (None if not); FileExistsError if it is no regular file."""
    try:
        existing = target.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(existing.st_mode):
        raise FileExistsError(errno.EEXIST, f"{_kind(existing.st_mode)}, not a regular file", str(target))
    return existing


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _mode_for(existing: os.stat_result | None) -> int:
    """The permission bits the file keeps (the replaced file's) or gets (0666 & ~umask)."""
    if existing is not None:
        return stat.S_IMODE(existing.st_mode)
    with _UMASK_LOCK:  # the umask can only be read by setting it
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _keep_owner(fd: int, existing: os.stat_result | None) -> None:
    """A replaced file keeps its owner where we may give it (as root: another user's file stays theirs)."""
    if existing is not None and (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):  # not root: it becomes ours, as a rename makes it
            os.fchown(fd, existing.st_uid, existing.st_gid)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | os.PathLike, name: str = "output") -> None:
    """Refuse, before any work is done, an output path that cannot be written (:class:`OutputError`
    naming ``name``, the option or field it came from): an empty name, a folder, a device, FIFO or
    socket (also behind a symlink), a read-only file, a missing folder, or a folder where no file can
    be made (``/proc``, ``/sys``, a read-only disk: tried by making and removing a file there)."""
    if not str(path).strip():
        raise OutputError(f"{name}: an empty file name")
    with _path_trouble(OutputError, name, path):
        _check_writable(Path(path), name)


def _check_writable(path: Path, name: str) -> None:
    target = _target(path)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise OutputError(f"{name} {path}: {e.strerror or e}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"{name} {path} is a folder, not a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(f"{name} {path} is not a regular file ({_kind(mode)})")
    if mode is not None and not os.access(target, os.W_OK):
        raise OutputError(f"{name} {path} is not writable")
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(f"{name} {path}: the folder {folder} does not exist")
    _try_a_file(folder, f"{name} {path}")


def _try_a_file(folder: Path, what: str) -> None:
    """Make and remove a file in ``folder``: the one honest test that a file can be written there
    (``os.access`` says yes to root in /proc and on read-only disks)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".cfg-tui-", suffix=".probe")
    except OSError as e:
        raise OutputError(f"{what}: the folder {folder} is not writable ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)


def check_folder(path: str | os.PathLike, name: str = "output folder") -> None:
    """Refuse, before any work is done, an output folder that cannot be made or written: a file (or a
    device) at the path or above it, or a place where no file can be made (``/proc``)."""
    if not str(path).strip():
        raise OutputError(f"{name}: an empty folder name")
    with _path_trouble(OutputError, name, path):
        _check_folder(Path(path), name)


def _check_folder(path: Path, name: str) -> None:
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: mkdir would fail on it
            raise OutputError(f"{name} {path}: {existing} is a broken link")
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == path else f": {existing} is"
        raise OutputError(f"{name} {path}{where} is not a folder")
    _try_a_file(existing, f"{name} {path}")


def check_input_file(path: str | os.PathLike, name: str = "input") -> None:
    """Refuse, before reading, an input that is there but no regular file (a FIFO would block the
    read forever, a device never end it); a missing one is the reader's to name."""
    with _path_trouble(InputError, name, path):
        try:
            mode = Path(path).stat().st_mode
        except FileNotFoundError:
            return
    if not stat.S_ISREG(mode):
        raise InputError(f"{name} {path} is not a regular file ({_kind(mode)})")


@contextmanager
def _path_trouble(error: type[SettingsError], name: str, path: str | os.PathLike) -> Iterator[None]:
    """The system's refusal of a path itself (a name too long, a NUL byte in it, a loop of links)
    becomes one line naming the option, like every other refusal of the checks above."""
    what = f"{name} {path}"
    if "\0" in str(path):  # pathlib answers "does not exist" to such a name; open() raises ValueError
        raise error(f"{what!r}: a NUL character in the name")
    try:
        yield
    except SettingsError:
        raise
    except OSError as e:
        raise error(f"{what}: {e.strerror or e}") from None


@contextmanager
def writing(name: str, path: str | os.PathLike) -> Iterator[None]:
    """Writes to a user's output ``path`` inside: the disk's refusal (full, an I/O error, a path gone
    since it was checked) becomes one :class:`OutputError` naming the option; the file is untouched."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"{name} {path}: could not write it: {e.strerror or e}") from None


@contextmanager
def output_folder(path: str | os.PathLike, name: str = "output folder") -> Iterator[Path]:
    """The folder ``path``, made if needed, to write a command's results in; if anything inside fails,
    a folder made here is removed again with what was written to it (a folder that was there stays,
    with any whole files already written), and an OSError becomes one :class:`OutputError`."""
    path = Path(path)
    made = next((p for p in [path, *path.parents][::-1] if not p.exists()), None)
    try:
        with writing(name, path):
            path.mkdir(parents=True, exist_ok=True)
            yield path
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise
