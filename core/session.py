"""One training run written to a run directory: metrics, status, checkpoints, previews.

The loop itself is :meth:`CFGTrainer.train`; this module decides what to write when,
and how the run ends: ``finished``, ``stopped`` (asked to stop: checkpoint first) or
``failed`` (a non-finite loss: the last good checkpoint is kept, the reason recorded).
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.checkpoint import save_checkpoint, save_tensors
from core.images import grid_figure, guidance_title, save_png
from core.runs import RunDir, RunError, RunStatus
from core.sampling import generate
from core.trainer import CFGTrainer

PREVIEW_GUIDANCE = 3.0
PREVIEW_PER_CLASS = 4
PREVIEW_STEPS = 20


@dataclass
class SessionOptions:
    checkpoint_every: int = 500
    preview_every: int = 500
    log_every: int = 10


def memory_mb(device: torch.device) -> float:
    """Peak memory: the CUDA allocator's on a GPU, else the process's resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TrainingSession:
    def __init__(self, run: RunDir, trainer: CFGTrainer, options: SessionOptions, elapsed: float = 0.0):
        self.run, self.trainer, self.options = run, trainer, options
        self.elapsed_before = elapsed
        self.checkpoint_step = trainer.step if run.state_path.exists() else None
        self.failure: str | None = None
        self._run_started: float | None = None  # when the run first started: read once, then kept
        self.last: dict = {}
        self._window_start = time.perf_counter()

    @property
    def total(self) -> int:
        return self.trainer.config.steps

    def checkpoint(self) -> None:
        """Training state first, then the weights to sample from: a crash between the two
        leaves a resumable run whose sampling weights are one checkpoint older."""
        step = self.trainer.step
        save_tensors(self.run.state_path, *self.trainer.state())
        save_checkpoint(self.run.model_path, self.trainer.sampling_model, {"step": str(step)})
        self.checkpoint_step = step

    def preview(self) -> None:
        cfg = self.trainer.model.config
        labels = torch.arange(cfg.num_classes).repeat_interleave(PREVIEW_PER_CLASS)
        images = generate(self.trainer.sampling_model, labels, PREVIEW_GUIDANCE, steps=PREVIEW_STEPS)
        figure = grid_figure(
            [(guidance_title(PREVIEW_GUIDANCE), images)], [str(c) for c in range(cfg.num_classes)]
        )
        save_png(figure, self.run.previews / f"step-{self.trainer.step:06d}.png")

    def _device_label(self) -> str:
        """``cpu`` or ``cuda:0``, and ``cpu × 2`` / ``cuda × 4`` for several processes."""
        world = self.trainer.ranks.world_size
        return str(self.trainer.device) if world == 1 else f"{self.trainer.device.type} × {world}"

    def _status(self, state: str, reason: str | None = None) -> None:
        status = RunStatus.now(
            state,
            self.trainer.step,
            self.total,
            started=self._run_started,
            checkpoint_step=self.checkpoint_step,
            device=self._device_label(),
            last_loss=self.last.get("loss"),
            elapsed=self.last.get("elapsed", self.elapsed_before),
            reason=reason,
        )
        self._run_started = status.started  # a first run's start is its first status
        self.run.write_status(status)

    def _first_start(self) -> float | None:
        """When the run first started (a resumed run keeps its own), read once per session."""
        try:
            previous = self.run.status()
        except RunError:
            return None  # unreadable: this run's own status replaces it
        return previous.started if previous else None

    def _on_step(self, step: int, on_log: Callable[[dict], None]) -> bool:
        steps = self.trainer.pending
        loss, self.failure = check_at(self.trainer, self.options, step)
        if loss is not None and self.failure is None:
            self._log(step, loss, steps, on_log)
        if self.failure is not None:
            return True
        opts = self.options
        if opts.checkpoint_every and step % opts.checkpoint_every == 0 and step < self.total:
            self.checkpoint()
        if opts.preview_every and step % opts.preview_every == 0 and step < self.total:
            self.preview()
        return False

    def _log(self, step: int, loss: float, steps: int, on_log: Callable[[dict], None]) -> None:
        """Append the record of the ``steps`` steps up to ``step`` (their mean ``loss``)."""
        now = time.perf_counter()  # after the loss was read: the device has finished them
        seconds = now - self._window_start
        record = {
            "step": step,
            "loss": loss,
            "lr": self.trainer.optimizer.param_groups[0]["lr"],
            "images_per_sec": steps * self.trainer.config.batch_size / max(seconds, 1e-9),
            "elapsed": round(self.elapsed_before + now - self._started, 3),
            "memory_mb": round(memory_mb(self.trainer.device), 1),
        }
        self._window_start = now
        self.last = record
        self.run.append_metrics(record)
        self._status("running")
        on_log(record)

    def run_until_done(self, should_stop: Callable[[], bool], on_log: Callable[[dict], None]) -> str:
        """Train to the configured total; returns the final state written to status.json."""
        self._started = time.perf_counter()
        self._window_start = self._started
        self._run_started = self._first_start()
        self._status("running")
        self.trainer.train(
            callback=lambda step: self._on_step(step, on_log),
            should_stop=should_stop,
            agree_every=self.options.log_every,
        )
        if self.failure is None:
            steps = self.trainer.pending
            loss, self.failure = check_at(self.trainer, self.options, self.trainer.step, final=True)
            if loss is not None and self.failure is None:
                self._log(self.trainer.step, loss, steps, on_log)
        if self.failure is not None:
            self._status("failed", reason=self.failure)
            return "failed"
        self.checkpoint()
        if self.trainer.step >= self.total:
            self.preview()
            self._status("finished")
            return "finished"
        self._status("stopped", reason="asked to stop")
        return "stopped"


def check_at(
    trainer: CFGTrainer, options: SessionOptions, step: int, final: bool = False
) -> tuple[float | None, str | None]:
    """What a run reads from the device after ``step``: the window's mean loss at a log step (or
    at the end, ``final``) and, before a checkpoint, whether losses and weights are finite.

    Returns ``(loss or None, failure or None)``. Every rank of a run calls this at the same steps
    (it holds collectives); only rank 0 writes what it finds.
    """
    loss = None
    if trainer.pending and (final or step % options.log_every == 0 or step == trainer.config.steps):
        loss = trainer.take_loss()
        if not math.isfinite(loss):
            return loss, f"loss became {loss} by step {step}"
    checkpoint = final or (options.checkpoint_every and step % options.checkpoint_every == 0)
    if checkpoint and not trainer.finite():
        return loss, f"weights or loss became non-finite by step {step}"
    return loss, None
