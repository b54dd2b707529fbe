"""The app's settings, typed, handed to :class:`tui.app.CfgTuiApp` by the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.assets import BUNDLED_MODEL
from core.runs import default_runs_folder


@dataclass(frozen=True)
class AppSettings:
    runs_folder: Path = field(default_factory=default_runs_folder)
    """Where the Train screen makes and lists runs."""
    checkpoint: Path = BUNDLED_MODEL
    """What the Sample and Evaluate screens start with."""
    data_root: Path | None = None
    """The data folder for training and evaluation (None: $CFG_TUI_DATA_ROOT, else the per-user one)."""
