"""``cfg-tui train``: Typer glue over :mod:`core.lifecycle`, plus launching torchrun for ``--nproc``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from core import quick_eval
from core.configs import EVENTS_PER_RUN, INTERVAL, LR_DECAYS, SEEDS, TIME_SAMPLINGS, TRAIN_STEPS
from core.data import DATASETS
from core.presets import PRESETS
from core.runs import RunDir, default_runs_folder
from core.schedules import SCHEDULES
from core.settings import DEVICES, RunSettings, check_processes, new_run_path, plan_run, resolve_device
from tui import defaults
from tui.commands.common import DataRoot, check_folder, log, number, parse_ints, whole

# The trainer's modules load torch: imported in the command, so that --help does not wait for them.
if TYPE_CHECKING:
    from core.lifecycle import Prepared
    from core.session import SessionOptions, TrainingSession


def _whole(help: str) -> Any:
    """An optional whole-number override: strict digits here, its range checked by core.settings.plan_run
    (in the words the app's Train form gets too)."""
    return typer.Option(None, parser=whole(), help=help)


def _number(help: str) -> Any:
    """An optional number override: strict here, its range checked by core.settings.plan_run."""
    return typer.Option(None, parser=number(), help=help)


def train(
    preset: str = typer.Option(
        defaults.TRAIN_PRESET,
        help="; ".join(f"{name}: {p.description}" for name, p in PRESETS.items())
        + "; auto: seed on a GPU, else cpu.",
    ),
    steps: int | None = _whole("Total optimizer steps (also extends a resumed run)."),
    batch_size: int | None = _whole("Images per step."),
    lr: float | None = _number("Adam learning rate."),
    eta: float | None = _number("Probability of dropping a label to null."),
    ema_decay: float | None = _number("EMA decay of the weights (0 = off)."),
    grad_clip: float | None = _number("Clip the gradient norm to this (0 = off)."),
    schedule: str | None = typer.Option(None, help=f"Noise schedule: {', '.join(SCHEDULES)}."),
    channels: str | None = typer.Option(None, help="U-Net widths per stage, e.g. 32,64,128."),
    layers: int | None = _whole("Residual layers per stage."),
    embed_dim: int | None = _whole("Width of the time and label embeddings."),
    time_sampling: str | None = typer.Option(
        None, help=f"How t is drawn in training: {', '.join(TIME_SAMPLINGS)} (sigmoid of a normal)."
    ),
    time_mean: float | None = _number("Mean of the logit-normal's normal."),
    time_std: float | None = _number("Standard deviation of the logit-normal's normal."),
    warmup_steps: int | None = _whole("Steps of linear learning-rate warm-up."),
    lr_decay: str | None = typer.Option(None, help=f"After the warm-up: {', '.join(LR_DECAYS)}."),
    lr_floor: float | None = _number("The lr at the last step, as a fraction of --lr."),
    beta1: float | None = _number("Adam's beta1."),
    beta2: float | None = _number("Adam's beta2."),
    precision: str | None = typer.Option(
        None,
        help="fp32, bf16 (autocast of the network) or auto: bf16 where the device computes it "
        "natively (CUDA, CPUs with AVX512-BF16/AMX: 1.5-3x faster).",
    ),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the U-Net."),
    device: str = typer.Option("auto", help=", ".join(DEVICES) + "."),
    dataset: str = typer.Option("mnist", help=", ".join(DATASETS)),
    data_root: Path | None = DataRoot,
    name: str | None = typer.Option(
        None, help="The new run's folder name in RUNS (default: <time>-<preset>)."
    ),
    run_dir: Path | None = typer.Option(None, help="The new run's folder, anywhere (instead of --name)."),
    runs: Path | None = typer.Option(None, help="Folder for new runs (default: $CFG_TUI_RUNS or ./runs)."),
    resume: Path | None = typer.Option(None, help="Continue this run from its last checkpoint."),
    checkpoint_every: int | None = typer.Option(
        None,
        parser=whole(INTERVAL),
        help="Steps between checkpoints (0 = only at the end). Default: about "
        f"{EVENTS_PER_RUN} per run, on logged steps.",
        show_default=False,
    ),
    preview_every: int | None = typer.Option(
        None,
        parser=whole(INTERVAL),
        help=f"Steps between preview grids (0 = only at the end). Default: about {EVENTS_PER_RUN} per run.",
        show_default=False,
    ),
    log_every: int = typer.Option(10, parser=whole(TRAIN_STEPS), help="Steps per metrics record."),
    eval_every: int | None = typer.Option(
        None,
        parser=whole(INTERVAL),
        help=f"Steps between quick quality evaluations ({10 * quick_eval.PER_CLASS} samples, "
        f"{quick_eval.SOLVER} × {quick_eval.STEPS}, w = {quick_eval.GUIDANCE:g}; FD and accuracy in "
        "metrics.jsonl), and one at the end; 0 = none. Default: "
        f"{quick_eval.EVALS_PER_RUN} per run, for runs of {quick_eval.AUTO_MIN_IMAGES:,}+ images "
        "(steps × batch).",
        show_default=False,
    ),
    seed: int = typer.Option(0, parser=whole(SEEDS), help="Seed of the weights and of every random draw."),
    nproc: int = typer.Option(
        1,
        parser=whole(),
        help="Training processes (one per GPU, or CPU processes): data parallel, via torchrun.",
    ),
    sync_bn: bool = typer.Option(
        False, "--sync-bn", help="With several processes: BatchNorm statistics of the global batch."
    ),
) -> None:
    """Train the U-Net with CFG flow matching, writing a run directory (resumable exactly)."""
    from core.distributed import Ranks
    from core.lifecycle import create_run, open_session, prepare_resume, train_as_rank
    from core.session import SessionOptions

    ranks = Ranks.from_env()
    options = SessionOptions(checkpoint_every, preview_every, log_every, eval_every)
    overrides = {
        "batch_size": batch_size, "lr": lr, "eta": eta, "ema_decay": ema_decay, "grad_clip": grad_clip,
        "schedule": schedule, "time_sampling": time_sampling, "time_mean": time_mean, "time_std": time_std,
        "warmup_steps": warmup_steps, "lr_decay": lr_decay, "lr_floor": lr_floor, "beta1": beta1,
        "beta2": beta2, "precision": precision, "channels": channels, "layers": layers,
        "embed_dim": embed_dim, "name": name, "run_dir": run_dir,
    }  # fmt: skip
    if resume is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in overrides.items() if v is not None]
        if given:
            raise typer.BadParameter(
                f"--resume continues with the run's own settings; drop {', '.join(given)}"
            )
    if name is not None and run_dir is not None:
        raise typer.BadParameter("give --name or --run-dir, not both")
    if ranks.distributed and nproc not in (1, ranks.world_size):
        raise typer.BadParameter(f"--nproc {nproc} disagrees with the {ranks.world_size} processes started")
    settings = RunSettings(
        preset=preset, steps=steps, batch_size=batch_size, lr=lr, eta=eta, ema_decay=ema_decay,
        grad_clip=grad_clip, schedule=schedule, time_sampling=time_sampling, time_mean=time_mean,
        time_std=time_std, warmup_steps=warmup_steps, lr_decay=lr_decay, lr_floor=lr_floor, beta1=beta1,
        beta2=beta2, precision=precision, layers=layers,
        channels=parse_ints("--channels", channels) if channels else None, embed_dim=embed_dim,
        seed=seed, compile=compile, sync_bn=sync_bn,
        device=device, processes=ranks.world_size if ranks.distributed else nproc,
    )  # fmt: skip
    plan = plan_run(settings) if resume is None else None
    torch_device = resolve_device(device)
    processes = check_processes(settings.processes, torch_device)

    def prepare() -> Prepared:
        """The run to train: a new one, or a stopped one checked and extended to ``--steps``."""
        if plan is None:
            return prepare_resume(resume, steps), None
        if run_dir is not None:
            check_folder("--run-dir", run_dir)
        path = run_dir or new_run_path(runs or default_runs_folder(), plan.preset, name)
        return create_run(plan, path, dataset, data_root, log)

    if ranks.distributed:
        if not train_as_rank(ranks, torch_device.type, prepare, _run, data_root, options, log):
            raise typer.Exit(2)  # rank 0 has said why
    elif processes > 1:
        # Checked and created here, so that a bad setting is one line, not one per process.
        run, _ = prepare()
        raise typer.Exit(_torchrun(processes, run.path, torch_device.type, data_root, options))
    else:
        run, data = prepare()
        _run(open_session(run, torch_device, data_root, options, data=data, log=log))


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
        *_given("--data-root", data_root),
        *_given("--checkpoint-every", options.checkpoint_every),
        *_given("--preview-every", options.preview_every),
        *("--log-every", str(options.log_every)),
        *_given("--eval-every", options.eval_every),
    ]
    env = dict(os.environ)
    # torchrun would give each rank one thread (and say so); share the cores out instead.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    from core.lifecycle import ask_to_stop

    child = subprocess.Popen(command, env=env, start_new_session=True)
    run = RunDir(run_dir)

    def stop(signum: int, frame: object) -> None:
        if not ask_to_stop(run):
            os.killpg(child.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _given(option: str, value: object) -> tuple[str, ...]:
    """``option value`` for a command line, or nothing when ``value`` is None (the default)."""
    return () if value is None else (option, str(value))


def _run(session: TrainingSession) -> None:
    _finish(session, _train_with_progress(session))


def _train_with_progress(session: TrainingSession) -> str:
    """A Rich progress bar on a terminal, plain log lines otherwise."""
    from core.lifecycle import train_run

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

            return train_run(session, on_log=on_log)
    return train_run(session, on_log=lambda r: _print_record(r, total))


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
