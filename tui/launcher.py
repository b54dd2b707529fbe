"""Training as a detached process: ``cfg-tui train --resume RUN`` in its own session, so that
closing the app or losing the SSH connection does not stop it. It runs with ``cfg-tui train``'s
defaults for checkpoints, previews and quick quality evaluations (:func:`core.quick_eval.auto_eval_every`:
five per run of enough images, drawn by the Train screen's second chart). Its output goes to the
run's ``train.log`` (the app shows the last line when the trainer exits with an error)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.runs import RunDir


def launch_training(args: list[str], run_dir: Path) -> subprocess.Popen:
    """Start ``cfg-tui train ARGS`` for the existing run at ``run_dir``, detached."""
    command = [sys.executable, "-m", "tui.cli", "train", *args]
    with RunDir(run_dir).log_path.open("ab") as log:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
        )
