"""Atomic writes: whole files, and the permissions a plain open would give."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.files import atomic_write_text


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
