"""One training run written to a run directory: metrics, status, checkpoints, previews.

The loop itself is :meth:`CFGTrainer.train`; this module decides what to write when,
and how the run ends: ``finished``, ``stopped`` (asked to stop: checkpoint first) or
``failed`` (a non-finite loss: the last good checkpoint is kept, the reason recorded).

metrics.jsonl holds two kinds of record: a loss record per logged step, and now and then a
quality record, ``{"step", "elapsed", "quality": {...}}`` (:mod:`core.quick_eval`).
"""

from __future__ import annotations

import json
import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from core.checkpoint import save_checkpoint, save_tensors
from core.configs import auto_every
from core.images import TILES_KEY, grid_figure, guidance_title, save_png, tiles_text
from core.quick_eval import PER_CLASS, QualityOff, QuickEval, auto_eval_every, quality_line
from core.run_lock import RunLock
from core.runs import RunDir, RunError, RunStatus
from core.sampling import generate
from core.trainer import CFGTrainer

PREVIEW_GUIDANCE = 3.0
PREVIEW_PER_CLASS = 4
PREVIEW_STEPS = 20


@dataclass
class SessionOptions:
    checkpoint_every: int | None = None
    """Steps between checkpoints (0: only at the end; None: :func:`auto_every` of the run's length)."""
    preview_every: int | None = None
    """Steps between preview grids, as ``checkpoint_every``."""
    log_every: int = 10
    eval_every: int | None = None
    """Steps between quick quality evaluations, and one at the end of a finished run; 0 = none;
    None = :func:`core.quick_eval.auto_eval_every` of the run's length."""
    eval_per_class: int = PER_CLASS
    """Samples of each digit per quality evaluation."""

    def checkpoint_interval(self, steps: int) -> int:
        every = self.checkpoint_every
        return auto_every(steps, self.log_every) if every is None else every

    def preview_interval(self, steps: int) -> int:
        every = self.preview_every
        return auto_every(steps, self.log_every) if every is None else every


def _quiet(message: str) -> None:
    pass


def memory_mb(device: torch.device) -> float:
    """Peak memory: the CUDA allocator's on a GPU, else the process's resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TrainingSession:
    def __init__(
        self,
        run: RunDir,
        trainer: CFGTrainer,
        options: SessionOptions,
        elapsed: float = 0.0,
        data_root: Path | None = None,
        log: Callable[[str], None] = _quiet,
    ):
        self.run, self.trainer, self.options = run, trainer, options
        self.elapsed_before = elapsed
        self.data_root, self.log = data_root, log
        self.quick_eval: QuickEval | None = None  # made when the run starts, if evaluations are on
        self.checkpoint_step = trainer.step if run.state_path.exists() else None
        # Training goes on from trainer.step: any later snapshot is of a discarded future.
        run.remove_snapshots_after(trainer.step)
        self.failure: str | None = None
        self.lock: RunLock | None = None  # the run's trainer lock, when the session holds it
        self._run_started: float | None = None  # when the run first started: read once, then kept
        self.last: dict = {}
        self._window_start = time.perf_counter()

    @property
    def total(self) -> int:
        return self.trainer.config.steps

    def checkpoint(self) -> None:
        """This step's snapshot, then the training state, then the weights to sample from.

        Each file is written atomically, so a crash leaves at worst a snapshot newer than the
        state (the resume from that state removes it) or sampling weights one checkpoint older:
        every step a run can resume from has its snapshot."""
        step, model = self.trainer.step, self.trainer.sampling_model
        save_checkpoint(self.run.snapshot_path(step), model, {"step": str(step)})
        save_tensors(self.run.state_path, *self.trainer.state())
        save_checkpoint(self.run.model_path, model, {"step": str(step)})
        self.checkpoint_step = step

    def preview(self) -> None:
        cfg = self.trainer.model.config
        labels = torch.arange(cfg.num_classes).repeat_interleave(PREVIEW_PER_CLASS)
        images = generate(self.trainer.sampling_model, labels, PREVIEW_GUIDANCE, steps=PREVIEW_STEPS)
        digits = [str(c) for c in range(cfg.num_classes)]
        figure = grid_figure([(guidance_title(PREVIEW_GUIDANCE), images)], digits)
        # Where the tiles are, so that the app can lay them out for a terminal (core.images.figure_tiles).
        text = {"step": str(self.trainer.step), TILES_KEY: tiles_text(digits, PREVIEW_PER_CLASS)}
        save_png(figure, self.run.previews / f"step-{self.trainer.step:06d}.png", text)

    @property
    def eval_every(self) -> int:
        """Steps between quality evaluations (0: none), the option or its default for this run."""
        every = self.options.eval_every
        config = self.trainer.config
        return auto_eval_every(config.steps, config.batch_size) if every is None else every

    def _start_quality(self) -> None:
        """The classifier and the reference, once per session; if they cannot be had, one line
        saying why and training goes on without quality records."""
        if not self.eval_every:
            return
        config = self.run.config()
        root = self.data_root or (Path(config.data.root) if config.data.root else None)
        try:
            self.quick_eval = QuickEval.load(
                config.data.dataset, config.model, root, self.trainer.device,
                self.options.eval_per_class, log=self.log,
            )  # fmt: skip
        except QualityOff as e:
            self.log(f"quality evaluation off: {e}")

    def evaluate(self) -> None:
        """Append a quality record of the weights sampled from, now; an evaluation that fails turns
        the evaluations off (one line) rather than the training."""
        if self.quick_eval is None:
            return
        try:
            quality = self.quick_eval.measure(self.trainer.sampling_model)
        except (RuntimeError, ValueError) as e:  # e.g. a linear-algebra failure on non-finite samples
            self.quick_eval = None
            self.log(f"quality evaluation off: it failed at step {self.trainer.step} ({e})")
            return
        # The loss window's throughput is of training: the evaluation's seconds are left out of it.
        self._window_start += quality["seconds"]
        now = time.perf_counter()
        record = {"step": self.trainer.step, "elapsed": round(self.elapsed_before + now - self._started, 3)}
        self.run.append_metrics(record | {"quality": quality})
        self.log(f"quality at step {self.trainer.step}: {quality_line(quality)}")

    def _device_label(self) -> str:
        """``cpu`` or ``cuda:0``, and ``cpu × 2`` / ``cuda × 4`` for several processes."""
        world = self.trainer.ranks.world_size
        return str(self.trainer.device) if world == 1 else f"{self.trainer.device.type} × {world}"

    def _status(self, state: str, reason: str | None = None, phase: str | None = None) -> None:
        self.run.write_status(self._status_now(state, reason, phase))

    def _status_now(self, state: str, reason: str | None = None, phase: str | None = None) -> RunStatus:
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
            phase=phase,
        )
        self._run_started = status.started  # a first run's start is its first status
        return status

    def _first_start(self) -> float | None:
        """When the run first started (a resumed run keeps its own), read once per session."""
        try:
            previous = self.run.status()
        except RunError:
            return None  # unreadable: this run's own status replaces it
        return previous.started if previous else None

    def _read(self, step: int, on_log: Callable[[dict], None], final: bool = False) -> bool:
        """What :func:`check_at` reads after ``step``, logged if it is a good loss; true if the run failed."""
        steps = self.trainer.pending
        loss, self.failure = check_at(self.trainer, self.options, step, final)
        if loss is not None and self.failure is None:
            self._log(step, loss, steps, on_log)
        return self.failure is not None

    def _on_step(self, step: int, on_log: Callable[[dict], None]) -> bool:
        if self._read(step, on_log):
            return True
        checkpoint_every = self.options.checkpoint_interval(self.total)
        preview_every = self.options.preview_interval(self.total)
        if checkpoint_every and step % checkpoint_every == 0 and step < self.total:
            self.checkpoint()
        if preview_every and step % preview_every == 0 and step < self.total:
            self.preview()
        if self.eval_every and step % self.eval_every == 0 and step < self.total:
            self.evaluate()
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

    def run_until_done(
        self,
        should_stop: Callable[[], bool],
        on_log: Callable[[dict], None],
        stop_reason: Callable[[], str] = lambda: "asked to stop",
    ) -> str:
        """Train to the configured total; returns the final state written to status.json.

        Until the first logged step, status.json names the phase (the app's banner shows it):
        loading the quality classifier, then the first step (it includes the device's warm-up)."""
        self._run_started = self._first_start()
        if self.eval_every:
            self._status("running", phase="loading the quality classifier")
        self._start_quality()  # before the clock starts: its seconds are not training
        self._started = time.perf_counter()
        self._window_start = self._started
        self._status("running", phase=f"first steps (the first record is at step {self._first_log_step()})")
        self.trainer.train(
            callback=lambda step: self._on_step(step, on_log),
            should_stop=should_stop,
            agree_every=self.options.log_every,
        )
        if self.failure is not None or self._read(self.trainer.step, on_log, final=True):
            self._status("failed", reason=self.failure)
            return "failed"
        self.checkpoint()
        if self.trainer.step >= self.total:
            self.preview()
            self.evaluate()
            self._status("finished")
            return "finished"
        self._status("stopped", reason=stop_reason())
        return "stopped"

    def _first_log_step(self) -> int:
        every = self.options.log_every
        return min(self.total, (self.trainer.step // every + 1) * every)

    def fail(self, reason: str) -> None:
        """End the run as ``failed`` with ``reason`` (an exception in the loop); the last
        checkpoint stays as it was."""
        self.failure = reason
        status = self._status_now("failed", reason=reason)
        try:
            self.run.write_status(status)
        except OSError:
            # A full disk refuses the atomic write's new file; the old status's blocks are still there.
            text = (json.dumps(status.to_dict(), indent=2) + "\n").encode()
            with self.run.status_path.open("r+b") as f:
                f.write(text)
                f.truncate()


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
    every = options.checkpoint_interval(trainer.config.steps)
    checkpoint = final or (every and step % every == 0)
    if checkpoint and not trainer.finite():
        return loss, f"weights or loss became non-finite by step {step}"
    return loss, None
