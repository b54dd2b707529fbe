"""The app's settings, typed, handed to :class:`tui.app.CfgTuiApp` by the command line, and the
Sample form's choices remembered between sessions in a small TOML file in the per-user config folder."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
import tomli_w

from core.assets import BUNDLED_MODEL
from core.files import atomic_write_text
from core.run_files import RunError
from core.runs import default_runs_folder, read_regular

if TYPE_CHECKING:
    from tui.graphics import GraphicsMode

CONFIG_ENV = "CFG_TUI_CONFIG"


def default_config_file() -> Path:
    """``$CFG_TUI_CONFIG``, else ``settings.toml`` in the per-user config folder (platformdirs)."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    return platformdirs.user_config_path("cfg-tui") / "settings.toml"


@dataclass(frozen=True)
class AppSettings:
    runs_folder: Path = field(default_factory=default_runs_folder)
    """Where the Train screen makes and lists runs."""
    checkpoint: Path = BUNDLED_MODEL
    """What the Sample and Evaluate screens start with."""
    data_root: Path | None = None
    """The data folder for training and evaluation (None: $CFG_TUI_DATA_ROOT, else the per-user one)."""
    graphics: GraphicsMode = "auto"
    """How the sample grid is drawn: auto (what the terminal supports), kitty, sixel or halfblock."""
    config_file: Path | None = field(default_factory=default_config_file)
    """Where the Sample form's choices are remembered (None: nothing is read or written)."""


SETTINGS_LIMIT = 1 << 20
"""Bytes read of the settings file at most: it holds a dozen short fields."""


@dataclass
class Remembered:
    """The Sample form as the user left it: each field's text (a Select's value), by field id, and
    the chosen rows. Unknown or ill-typed entries in the file are dropped, not trusted."""

    fields: dict[str, str] = field(default_factory=dict)
    digits: list[int] | None = None
    null: bool | None = None

    @classmethod
    def read(cls, path: Path | None) -> Remembered:
        """What ``path`` remembers; a missing file is nothing remembered. A damaged one, or one that is
        no regular file (a FIFO would block the app before it is shown), raises ValueError (one line)
        so that the app can say so and go on with the defaults."""
        if path is None:
            return cls()
        try:
            data = read_regular(path, limit=SETTINGS_LIMIT)
            if data is None:
                return cls()
            table = tomllib.loads(data.decode("utf-8")).get("sample", {})
        except RunError as e:  # it names the file and what it is instead
            raise ValueError(f"settings file {e}; using the defaults") from None
        except (ValueError, OSError) as e:  # UnicodeDecodeError, TOMLDecodeError
            raise ValueError(f"settings file {path} is unreadable ({e}); using the defaults") from None
        if not isinstance(table, dict):
            return cls()
        fields = {k: v for k, v in table.get("fields", {}).items() if isinstance(v, str)}
        digits = table.get("digits")
        if not (isinstance(digits, list) and all(type(d) is int and 0 <= d < 1000 for d in digits)):
            digits = None
        null = table.get("null") if isinstance(table.get("null"), bool) else None
        return cls(fields, digits, null)

    def write(self, path: Path | None) -> None:
        """Store atomically (the folder is made if needed); nothing when ``path`` is None."""
        if path is None:
            return
        table: dict[str, object] = {"fields": dict(self.fields)}
        if self.digits is not None:
            table["digits"] = list(self.digits)
        if self.null is not None:
            table["null"] = self.null
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "# cfg-tui remembers the Sample form here; delete to forget.\n"
                          + tomli_w.dumps({"sample": table}))  # fmt: skip
