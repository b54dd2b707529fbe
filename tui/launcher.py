"""Training as a detached process: ``cfg-tui train`` in its own session, so that closing the
app or losing the SSH connection does not stop it. Its output goes to ``<run>/train.log``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from core.runs import RunDir

LOG_NAME = "train.log"


def launch_training(args: list[str], run_dir: Path) -> subprocess.Popen:
    """Start ``cfg-tui train ARGS`` writing to ``run_dir`` (for a new run, ``--run-dir`` is added)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tui.cli", "train", *args]
    if "--resume" not in args:
        command += ["--run-dir", str(run_dir)]
    with (run_dir / LOG_NAME).open("ab") as log:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
        )


def stop_training(run: RunDir) -> bool:
    """Ask a running run to checkpoint and stop (SIGINT, as Ctrl-C would); False if it is not running."""
    if run.liveness() != "running":
        return False
    try:
        os.kill(int(run.status()["pid"]), signal.SIGINT)
    except (ProcessLookupError, KeyError, ValueError):
        return False
    return True


def last_log_line(run_dir: Path) -> str:
    """The last non-empty line of the run's train.log (to explain a launch that failed)."""
    try:
        lines = (run_dir / LOG_NAME).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""
