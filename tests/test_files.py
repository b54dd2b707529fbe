"""Atomic writes: whole files, and the permissions a plain open would give."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.files import (
    OutputError,
    atomic_write_bytes,
    atomic_write_text,
    check_folder,
    check_writable,
    output_folder,
    writing,
)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o027)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_0666_less_the_umask(tmp_path: Path, umask: None) -> None:
    path = atomic_write_text(tmp_path / "grid.json", "{}")
    assert path.read_text() == "{}"
    assert _mode(path) == 0o640  # not mkstemp's 0600


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path, umask: None) -> None:
    path = tmp_path / "shared.json"
    path.write_text("old")
    path.chmod(0o664)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o664


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.json", "1")
    atomic_write_text(tmp_path / "a.json", "2")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


# --- only regular files are replaced; outputs are checked before work and a failed write is an error


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_an_existing_0644_file_keeps_0644_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "grid.png"
    path.write_bytes(b"old")
    path.chmod(0o644)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o644
    private = tmp_path / "private.png"
    private.write_bytes(b"old")
    private.chmod(0o600)
    atomic_write_bytes(private, b"new")
    assert _mode(private) == 0o600  # not widened to 0644 either


def test_a_symlink_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    target, link = tmp_path / "target.png", tmp_path / "link.png"
    target.write_text("old")
    link.symlink_to(target.name)
    check_writable(link, "--out")
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == "target.png"
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.png", "target.png"]


def test_a_dangling_symlink_writes_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to("made.json")
    atomic_write_text(link, "{}")
    assert link.is_symlink() and (tmp_path / "made.json").read_text() == "{}"


def test_a_fifo_is_refused_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "out.png"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match=r"^--out .*out\.png is not a regular file \(a FIFO\)$"):
        check_writable(fifo, "--out")
    with pytest.raises(FileExistsError):  # a rename would replace the FIFO itself
        atomic_write_bytes(fifo, b"png")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary file left


def test_a_symlink_to_a_device_or_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "to-fifo.png").symlink_to("fifo")
    with pytest.raises(OutputError, match="is not a regular file"):
        check_writable(tmp_path / "to-fifo.png", "--out")
    if Path("/dev/null").exists():
        (tmp_path / "to-null.png").symlink_to("/dev/null")
        with pytest.raises(OutputError, match=r"is not a regular file \(a device\)"):
            check_writable(tmp_path / "to-null.png", "--out")
        with pytest.raises(FileExistsError):
            atomic_write_bytes(tmp_path / "to-null.png", b"png")
        assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"^--json .* is a folder, not a file name$"):
        check_writable(tmp_path, "--json")
    with pytest.raises(OSError):
        atomic_write_text(tmp_path, "{}")
    assert tmp_path.is_dir()


def test_outputs_that_cannot_be_made_are_refused_before_work(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"the folder .*missing does not exist"):
        check_writable(tmp_path / "missing" / "x.png", "--out")
    with pytest.raises(OutputError, match="an empty file name"):
        check_writable("", "--out")
    if Path("/proc/self").exists():
        with pytest.raises(OutputError, match=r"^--out /proc/x\.png: the folder /proc is not writable"):
            check_writable("/proc/x.png", "--out")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone again


def test_output_folders_are_checked_and_a_file_is_no_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    check_folder(tmp_path / "new" / "deeper", "--out-dir")  # may be made: nothing is made yet
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    with pytest.raises(OutputError, match="is not a folder"):
        check_folder(tmp_path / "file", "--out-dir")
    with pytest.raises(OutputError, match="is not a folder"):
        check_folder(tmp_path / "file" / "below", "--out-dir")
    if Path("/proc/self").exists():
        with pytest.raises(OutputError, match="the folder /proc is not writable"):
            check_folder("/proc/sweep", "--out-dir")


def _disk_full(*args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_an_error_and_the_old_file_stays(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "rows.json"
    path.write_text("old")
    monkeypatch.setattr("core.files.os.fsync", _disk_full)
    with pytest.raises(OSError) as raised:
        atomic_write_text(path, "new")
    assert raised.value.errno == errno.ENOSPC
    full = r"^--out .*rows\.json: could not write it: No space left on device$"
    with pytest.raises(OutputError, match=full), writing("--out", path):
        atomic_write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["rows.json"]


def test_a_failed_output_folder_made_here_is_removed(tmp_path: Path, monkeypatch) -> None:
    made = tmp_path / "sweep" / "inner"
    monkeypatch.setattr("core.files.os.fsync", _disk_full)
    with pytest.raises(OutputError, match="No space left on device"), output_folder(made, "--out-dir"):
        atomic_write_text(made / "sweep.json", "[]")
    assert list(tmp_path.iterdir()) == []  # the highest folder made here went too
    (tmp_path / "kept").mkdir()
    with pytest.raises(OutputError), output_folder(tmp_path / "kept", "--out-dir"):
        atomic_write_text(tmp_path / "kept" / "sweep.json", "[]")
    assert (tmp_path / "kept").is_dir() and list((tmp_path / "kept").iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can write another user's file")
def test_root_replacing_a_users_file_keeps_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "theirs.png"
    path.write_bytes(b"old")
    os.chown(path, 4321, 4321)
    atomic_write_bytes(path, b"new")
    assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4321)


def test_sample_on_a_full_disk_exits_2_and_writes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    from core.checkpoint import save_checkpoint
    from core.trainer import new_model
    from tests.conftest import SMALL
    from tui.cli import run

    checkpoint = save_checkpoint(tmp_path / "small.safetensors", new_model(SMALL, seed=0).eval())
    out = tmp_path / "grid.png"
    monkeypatch.setattr("core.files.os.fsync", _disk_full)
    args = ["sample", "--checkpoint", str(checkpoint), "--preset", "lab", "--steps", "1", "--digits", "1",
            "--per-class", "1", "--out", str(out)]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        run(args)
    err = capsys.readouterr().err.strip().splitlines()  # the sampler's line, then the error
    assert exit_info.value.code == 2 and [line for line in err if "error" in line] == err[-1:], err
    assert err[-1].startswith("cfg-tui: error: --out ") and "No space left on device" in err[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.safetensors"]


def test_sample_writes_through_a_symlink_and_keeps_a_fifo(tmp_path: Path, capsys) -> None:
    from core.checkpoint import save_checkpoint
    from core.trainer import new_model
    from tests.conftest import SMALL
    from tui.cli import run

    checkpoint = save_checkpoint(tmp_path / "small.safetensors", new_model(SMALL, seed=0).eval())
    (tmp_path / "link.png").symlink_to("target.png")
    os.mkfifo(tmp_path / "fifo.png")
    base = ["sample", "--checkpoint", str(checkpoint), "--preset", "lab", "--steps", "1", "--digits", "1",
            "--per-class", "1"]  # fmt: skip
    for out, code in (("link.png", 0), ("fifo.png", 2)):
        with pytest.raises(SystemExit) as exit_info:
            run([*base, "--out", str(tmp_path / out)])
        assert exit_info.value.code == code, capsys.readouterr().err
    assert "is not a regular file (a FIFO)" in capsys.readouterr().err
    assert (tmp_path / "link.png").is_symlink() and (tmp_path / "target.png").read_bytes()[:4] == b"\x89PNG"
    assert stat.S_ISFIFO((tmp_path / "fifo.png").stat().st_mode)
