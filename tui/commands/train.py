"""``cfg-tui train``: a run directory from a preset, or the continuation of one."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from core import distributed
from core.checkpoint import CheckpointError, read_tensors
from core.data import DATASETS, ImageBatches, default_data_root, load_split
from core.distributed import ONE_PROCESS, Ranks
from core.presets import PRESETS
from core.runs import RunDir, RunError, default_runs_folder
from core.session import SessionOptions, TrainingSession
from core.trainer import CFGTrainer, TrainConfig, new_model
from core.unet import UNetConfig
from tui.commands.common import parse_ints, resolve_device
from tui.commands.data import DataRoot, log
from tui.launcher import stop_training

Prepared = tuple[RunDir, ImageBatches | None]
"""A run ready to train, and its training data when they were just read (a new run)."""


def train(
    preset: str = typer.Option(
        "auto", help="seed (the lab's recipe), cpu (small, minutes on a CPU), or auto."
    ),
    steps: int | None = typer.Option(None, min=1, help="Total optimizer steps (also extends a resumed run)."),
    batch_size: int | None = typer.Option(None, min=1, help="Images per step."),
    lr: float | None = typer.Option(None, help="Adam learning rate."),
    eta: float | None = typer.Option(None, help="Probability of dropping a label to null."),
    ema_decay: float | None = typer.Option(None, help="EMA decay of the weights (0 = off)."),
    grad_clip: float | None = typer.Option(None, help="Clip the gradient norm to this (0 = off)."),
    schedule: str | None = typer.Option(None, help="Noise schedule: linear (the lab's) or cosine."),
    channels: str | None = typer.Option(None, help="U-Net widths per stage, e.g. 32,64,128."),
    layers: int | None = typer.Option(None, min=0, help="Residual layers per stage."),
    embed_dim: int | None = typer.Option(None, min=2, help="Width of the time and label embeddings."),
    bf16: bool = typer.Option(
        False, help="bf16 autocast of the network: CUDA, or CPUs with AVX512-BF16/AMX (up to 2x faster)."
    ),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the U-Net."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    dataset: str = typer.Option("mnist", help=", ".join(DATASETS)),
    data_root: Path | None = DataRoot,
    run_dir: Path | None = typer.Option(None, help="The new run's folder (default: RUNS/<time>-<preset>)."),
    runs: Path | None = typer.Option(None, help="Folder for new runs (default: $CFG_TUI_RUNS or ./runs)."),
    resume: Path | None = typer.Option(None, help="Continue this run from its last checkpoint."),
    checkpoint_every: int = typer.Option(500, min=0, help="Steps between checkpoints (0 = only at the end)."),
    preview_every: int = typer.Option(500, min=0, help="Steps between preview grids (0 = only at the end)."),
    log_every: int = typer.Option(10, min=1, help="Steps per metrics record."),
    seed: int = typer.Option(0, help="Seed of the weights and of every random draw."),
    nproc: int = typer.Option(
        1, min=1, help="Training processes (one per GPU, or CPU processes): data parallel, via torchrun."
    ),
    sync_bn: bool = typer.Option(
        False, "--sync-bn", help="With several processes: BatchNorm statistics of the global batch."
    ),
) -> None:
    """Train the U-Net with CFG flow matching, writing a run directory (resumable exactly)."""
    ranks = Ranks.from_env()
    torch_device = resolve_device(device)
    options = SessionOptions(checkpoint_every, preview_every, log_every)
    overrides = {
        "batch_size": batch_size,
        "lr": lr,
        "eta": eta,
        "ema_decay": ema_decay,
        "grad_clip": grad_clip,
        "schedule": schedule,
        "channels": channels,
        "layers": layers,
        "embed_dim": embed_dim,
    }
    if resume is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in overrides.items() if v is not None]
        if given:
            raise typer.BadParameter(
                f"--resume continues with the run's own settings; drop {', '.join(given)}"
            )
    if ranks.distributed and nproc not in (1, ranks.world_size):
        raise typer.BadParameter(f"--nproc {nproc} disagrees with the {ranks.world_size} processes started")
    processes = max(nproc, ranks.world_size)
    if processes > 1 and torch_device.type == "cuda" and torch.cuda.device_count() < processes:
        raise typer.BadParameter(f"--nproc {processes}: this machine has {torch.cuda.device_count()} GPU(s)")

    def new_run() -> Prepared:
        name, model_config, train_config = _configs(
            preset, torch_device, steps, seed, overrides, bf16, compile, sync_bn
        )
        path = run_dir or (runs or default_runs_folder()) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
        root = data_root or default_data_root()
        data, fingerprint = load_split(dataset, "train", root, log=log)
        data_config = {"dataset": dataset, "root": str(root), "images": len(data), "fingerprint": fingerprint}
        sizes = (len(data), processes)
        run = _create_run(path, name, model_config, train_config, data_config, str(torch_device), sizes)
        return run, data  # the data just read, so that training does not read them again

    def prepare() -> Prepared:
        """The run to train: a new one, or a stopped one checked and extended to ``--steps``."""
        return (_check_resume(resume, steps), None) if resume is not None else new_run()

    if ranks.distributed:
        _train_as_rank(ranks, torch_device.type, prepare, data_root, options)
    elif processes > 1:
        # Checked and created here, so that a bad setting is one line, not one per process.
        run, _ = prepare()
        raise typer.Exit(_torchrun(processes, run.path, torch_device.type, data_root, options))
    else:
        run, data = prepare()
        _run(_session(run, torch_device, data_root, options, data=data))


def _configs(
    preset: str,
    device: torch.device,
    steps: int | None,
    seed: int,
    o: dict,
    bf16: bool,
    compile: bool,
    sync_bn: bool,
):
    name = preset if preset != "auto" else ("seed" if device.type == "cuda" else "cpu")
    if name not in PRESETS:
        raise typer.BadParameter(f"--preset must be auto, {', '.join(PRESETS)}, not {preset!r}")
    base = PRESETS[name]
    model_changes = {
        "channels": parse_ints("--channels", o["channels"]) if o["channels"] else None,
        "num_residual_layers": o["layers"],
        "t_embed_dim": o["embed_dim"],
        "y_embed_dim": o["embed_dim"],
    }
    train_changes = {k: o[k] for k in ("batch_size", "lr", "eta", "ema_decay", "grad_clip", "schedule")}
    train_changes |= {"steps": steps, "seed": seed, "bf16": bf16, "compile": compile, "sync_bn": sync_bn}
    try:
        model = dataclasses.replace(base.model, **{k: v for k, v in model_changes.items() if v is not None})
        train = dataclasses.replace(base.train, **{k: v for k, v in train_changes.items() if v is not None})
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    if train.schedule not in ("linear", "cosine"):
        raise typer.BadParameter(f"--schedule must be linear or cosine, not {train.schedule!r}")
    return name, model, train


def _create_run(
    path: Path,
    name: str,
    model_config: UNetConfig,
    train_config: TrainConfig,
    data_config: dict,
    device: str,
    sizes: tuple[int, int],
) -> RunDir:
    images, processes = sizes
    if train_config.batch_size > images:
        raise typer.BadParameter(
            f"--batch-size {train_config.batch_size} exceeds the {images} training images"
        )
    if train_config.batch_size < processes:
        raise typer.BadParameter(f"--batch-size {train_config.batch_size} is less than one image per process")
    config = {
        "preset": name,
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "data": data_config,
        "device": device,
        "processes": processes,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "cfg_tui": _version()},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
    }
    run = RunDir.create(path, config)
    processes_note = f", {processes} processes" if processes > 1 else ""
    typer.echo(f"run: {run.path} (preset {name}, {train_config.steps} steps{processes_note})", err=True)
    return run


def _check_resume(path: Path, steps: int | None) -> RunDir:
    """A run that may continue: not running, not done (unless ``steps`` extends it, which is saved)."""
    run = RunDir.open(path)
    if run.liveness() == "running":
        raise RunError(f"{run.path} is still running (pid {run.status().get('pid')}); stop it first")
    config = run.config()
    train_config = _train_config(run, config, steps)
    done = int(run.status().get("step", 0))
    if done >= train_config.steps:
        raise RunError(
            f"{run.path} has already trained {done} of {train_config.steps} steps; "
            f"pass --steps N with N > {done} to train further"
        )
    if steps:
        RunDir.write_json(run.config_path, {**config, "train": train_config.to_dict()})
    return run


def _train_config(run: RunDir, config: dict, steps: int | None = None) -> TrainConfig:
    try:
        return TrainConfig(**{**config["train"], **({"steps": steps} if steps else {})})
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{run.config_path} has unusable settings ({e})") from None


def _trainer(
    run: RunDir, device: torch.device, data_root: Path | None, ranks: Ranks, data: ImageBatches | None = None
) -> CFGTrainer:
    """The run's trainer on ``device``, at its last checkpoint if it has one; ``data``, when given, is
    the run's training data just loaded (else it is loaded and checked against the run's fingerprint)."""
    config = run.config()
    train_config = _train_config(run, config)
    try:
        model_config = UNetConfig.from_dict(config["model"])
        data_config = config["data"]
        dataset = data_config["dataset"]
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{run.config_path} has unusable settings ({e})") from None
    if data is None:
        root = data_root or Path(data_config.get("root") or default_data_root())
        data, fingerprint = load_split(dataset, "train", root, device=device, log=log)
        if fingerprint != data_config.get("fingerprint"):
            raise RunError(f"the {dataset} training data differ from the ones this run started with")
    trainer = CFGTrainer(new_model(model_config, train_config.seed), data.to(device), train_config, ranks)
    if run.state_path.exists():
        tensors, metadata = read_tensors(run.state_path)
        try:
            trainer.load_state(tensors, metadata)
        except (KeyError, ValueError, RuntimeError) as e:
            reason = str(e).splitlines()[0]
            raise CheckpointError(f"{run.state_path} does not fit this run ({reason})") from None
    return trainer


def _session(
    run: RunDir,
    device: torch.device,
    data_root: Path | None,
    options: SessionOptions,
    ranks: Ranks = ONE_PROCESS,
    data: ImageBatches | None = None,
) -> TrainingSession:
    """Rank 0's view of the run: the trainer plus everything written to the run directory."""
    trainer = _trainer(run, device, data_root, ranks, data)
    records = run.truncate_metrics(trainer.step)
    if trainer.step:
        typer.echo(f"run: {run.path} resumed at step {trainer.step} of {trainer.config.steps}", err=True)
    return TrainingSession(run, trainer, options, elapsed=records[-1]["elapsed"] if records else 0.0)


def _torchrun(
    processes: int, run_dir: Path, device_type: str, data_root: Path | None, options: SessionOptions
) -> int:
    """Train ``run_dir`` with ``processes`` ranks under torchrun; returns its exit code.

    torchrun runs in its own session, so Ctrl-C reaches only this process, which passes it to
    rank 0 as the app's Stop does: the ranks then stop together after a checkpoint and torchrun
    exits cleanly (signalled itself, it would print a traceback). Before rank 0 runs, torchrun
    and its ranks are simply terminated.
    """
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"),
        *("-m", "tui.cli", "train", "--resume", str(run_dir), "--device", device_type),
        *(("--data-root", str(data_root)) if data_root else ()),
        *("--checkpoint-every", str(options.checkpoint_every), "--preview-every", str(options.preview_every)),
        *("--log-every", str(options.log_every)),
    ]
    env = dict(os.environ)
    # torchrun would give each rank one thread (and say so); share the cores out instead.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    child = subprocess.Popen(command, env=env, start_new_session=True)
    run = RunDir(run_dir)

    def stop(signum: int, frame: object) -> None:
        if not stop_training(run):
            os.killpg(child.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _train_as_rank(
    ranks: Ranks,
    device_type: str,
    prepare: Callable[[], Prepared],
    data_root: Path | None,
    options: SessionOptions,
) -> None:
    """One of several processes: rank 0 prepares the run and writes it, every rank trains."""
    device = distributed.start(ranks, device_type)
    try:
        path, data = None, None
        if ranks.is_main:
            try:
                run, data = prepare()
                path = run.path
            finally:
                distributed.broadcast(path, device)  # None tells the others to give up
        else:
            path = distributed.broadcast(None, device)
            if path is None:
                raise typer.Exit(2)  # rank 0 has said why
        run = RunDir.open(path)
        if ranks.is_main:
            _run(_session(run, device, data_root, options, ranks, data))
        else:
            trainer = _trainer(run, device, data_root, ranks)
            with _stop_signals() as should_stop:
                trainer.train(
                    callback=lambda step, loss, ips: not math.isfinite(loss), should_stop=should_stop
                )
    finally:
        distributed.stop()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cfg-tui")
    except PackageNotFoundError:
        return "unknown"


@contextmanager
def _stop_signals() -> Iterator[Callable[[], bool]]:
    """SIGINT (Ctrl-C) and SIGTERM ask training to stop at the next step, checkpoint first."""
    asked = [False]

    def ask_to_stop(signum: int, frame: object) -> None:
        asked[0] = True

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: asked[0]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(session: TrainingSession) -> None:
    with _stop_signals() as should_stop:
        state = _train_with_progress(session, should_stop)
    _finish(session, state)


def _train_with_progress(session: TrainingSession, should_stop: Callable[[], bool]) -> str:
    """A Rich progress bar on a terminal, plain log lines otherwise."""
    total, start_step = session.total, session.trainer.step
    if sys.stdout.isatty():
        columns = (
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[ips]:.0f} img/s"),
            TimeRemainingColumn(),
        )
        with Progress(*columns) as progress:
            task = progress.add_task("train", total=total, completed=start_step, loss=float("nan"), ips=0.0)

            def on_log(r: dict) -> None:
                progress.update(task, completed=r["step"], loss=r["loss"], ips=r["images_per_sec"])

            return session.run_until_done(should_stop, on_log)
    return session.run_until_done(should_stop, lambda r: _print_record(r, total))


def _print_record(r: dict, total: int) -> None:
    eta = (total - r["step"]) * (r["elapsed"] / max(r["step"], 1))
    print(
        f"step {r['step']}/{total}  loss {r['loss']:.4f}  {r['images_per_sec']:.0f} img/s  "
        f"elapsed {r['elapsed']:.0f} s  eta {eta:.0f} s",
        flush=True,
    )


def _finish(session: TrainingSession, state: str) -> None:
    run = session.run
    if state == "failed":
        typer.echo(
            f"cfg-tui: training failed: {session.failure}; "
            f"last good checkpoint: step {session.checkpoint_step}",
            err=True,
        )
        raise typer.Exit(1)
    if state == "stopped":
        typer.echo(
            f"stopped at step {session.trainer.step}; continue with: cfg-tui train --resume {run.path}"
        )
    else:
        typer.echo(f"finished {session.total} steps; weights: {run.model_path}")
