"""Where the data live: ``$CFG_TUI_DATA_ROOT``, else the per-user data folder (no torch here: the
commands' options name the variable in their help)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_ROOT_ENV = "CFG_TUI_DATA_ROOT"


def default_data_root() -> Path:
    """``$CFG_TUI_DATA_ROOT``, else the per-user data folder (e.g. ~/.local/share/cfg-tui)."""
    return Path(os.environ.get(DATA_ROOT_ENV) or platformdirs.user_data_dir("cfg-tui"))
