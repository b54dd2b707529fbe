"""The ``cfg-tui`` command.

Nothing imported here (nor by the command modules) loads torch, which takes 2-3 s: ``--help``,
``runs`` and ``info`` answer in a fraction of a second, and the commands that compute import it
when they run. tests/test_startup.py holds this.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from core.checkpoint import CheckpointError
from core.configs import MiB, UNetConfig, unet_parameters, unet_size_bytes
from core.data import DataError
from core.images import SamplesError
from core.runs import RunError
from core.settings import SettingsError
from tui.commands import bench, data, eval, path, runs, sample, train
from tui.commands.common import parse_ints, whole

app = typer.Typer(
    name="cfg-tui",
    help="Class-conditional flow matching with classifier-free guidance on MNIST, from the terminal.",
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(bench.app, name="bench")
app.add_typer(eval.app, name="eval")
app.command("sweep")(eval.sweep_command)
app.command()(train.train)
app.command()(sample.sample)
app.command()(path.path)
app.command()(runs.runs)

USER_ERRORS = (DataError, CheckpointError, RunError, SettingsError, SamplesError)
"""Errors whose message is meant for the user: one line, exit code 2, no traceback."""


@app.command()
def info(
    channels: str = typer.Option("32,64,128", help="U-Net widths per stage, comma-separated."),
    layers: int = typer.Option(2, parser=whole(), help="Residual layers per stage."),
    embed_dim: int = typer.Option(40, parser=whole(), help="Width of the time and label embeddings."),
) -> None:
    """Show the U-Net's size for a configuration and what this machine can run it on."""
    try:
        config = UNetConfig(parse_ints("--channels", channels), layers, embed_dim, embed_dim)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    # Counted and looked up without torch (the U-Net is not built): see the module's docstring.
    table = Table(show_header=False, box=None)
    table.add_row("U-Net channels", ", ".join(map(str, config.channels)))
    table.add_row("residual layers / stage", str(config.num_residual_layers))
    table.add_row("embedding widths", f"t {config.t_embed_dim}, y {config.y_embed_dim}")
    table.add_row("parameters", f"{unet_parameters(config):,}")
    table.add_row("size (params + buffers)", f"{unet_size_bytes(config) / MiB:.3f} MiB")
    table.add_row("torch", torch_version())
    table.add_row("python", platform.python_version())
    table.add_row("CUDA device", cuda_device())
    table.add_row("CPU threads", str(cpu_threads()))
    Console().print(table)


def torch_version() -> str:
    """``torch.__version__`` (with its build, e.g. ``2.14.1+cu130``) read from torch's version.py
    without importing torch; else the installed distribution's version (which lacks the build)."""
    spec = importlib.util.find_spec("torch")  # a top-level package: found, not imported
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            match = re.search(
                r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", (Path(folder) / "version.py").read_text(), re.M
            )
        except OSError:
            continue
        if match:
            return match[1]
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
"""One folder per GPU (named by PCI address), each with an ``information`` file: the driver's list,
read instead of asking torch."""


def cuda_device(gpus: Path = NVIDIA_GPUS) -> str:
    """The model of the first CUDA device this process may use (``CUDA_VISIBLE_DEVICES`` honoured for
    device numbers), with how many more there are; ``none`` without an NVIDIA driver or GPU."""
    models = []
    for folder in sorted(gpus.glob("*")) if gpus.is_dir() else []:
        try:
            lines = (folder / "information").read_text(errors="replace").splitlines()
        except OSError:
            continue
        models += [line.split(":", 1)[1].strip() for line in lines if line.startswith("Model:")][:1]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        models = _visible(models, visible)
    if not models:
        return "none"
    return models[0] + (f" (and {len(models) - 1} more)" if len(models) > 1 else "")


def _visible(models: list[str], visible: str) -> list[str]:
    """The devices ``CUDA_VISIBLE_DEVICES`` leaves, as CUDA reads it: numbers up to the first that is
    not a device (empty or -1: none). Named devices (GPU-uuid, MIG) cannot be told apart here: all."""
    kept = []
    for item in visible.split(","):
        item = item.strip()
        if not item.lstrip("-").isdigit():  # a name, or the empty list
            return models if item and not kept else kept
        if not 0 <= int(item) < len(models):
            break
        kept.append(models[int(item)])
    return kept


def cpu_threads() -> int:
    """The threads torch computes with on the CPU: ``OMP_NUM_THREADS`` where set, else the CPUs this
    process may run on."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        return int(threads)
    return len(os.sched_getaffinity(0))


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    runs: Path | None = typer.Option(
        None, help="Runs folder for the app (default: $CFG_TUI_RUNS or ./runs)."
    ),
    checkpoint: Path | None = typer.Option(None, help="The app's checkpoint (default: the bundled model)."),
    graphics: str = typer.Option(
        "auto",
        help="How the app draws samples: auto (what the terminal supports; $CFG_TUI_GRAPHICS "
        "overrides), kitty, sixel or halfblock.",
    ),
) -> None:
    """cfg-tui: train and sample a class-conditional generator of MNIST digits.

    With no command, opens the terminal app.
    """
    if ctx.invoked_subcommand is None:
        from tui.app import CfgTuiApp
        from tui.graphics import detect_mode, parse_mode
        from tui.settings import AppSettings

        try:
            mode = parse_mode(graphics)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--graphics") from None
        detect_mode(mode)  # asks the terminal now: once the app runs, Textual owns its input
        defaults = AppSettings()
        settings = AppSettings(runs or defaults.runs_folder, checkpoint or defaults.checkpoint, graphics=mode)
        app = CfgTuiApp(settings)
        app.run()
        # The terminal is back; what is left is the interpreter tearing torch down (about a second
        # here), with nothing to save: every file the app writes is written atomically already.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(app.return_code or 0)


def run(argv: list[str] | None = None) -> None:
    """The console script: a usage error becomes one line on stderr and exit code 2."""
    try:
        code = app(args=argv, prog_name="cfg-tui", standalone_mode=False)
    except USER_ERRORS as e:
        typer.echo(f"cfg-tui: error: {e}", err=True)
        sys.exit(2)
    except Exception as e:
        # Typer's usage errors (its own or click's, by version) carry these two attributes.
        if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):
            raise
        if type(e).__name__ == "NoArgsIsHelpError" and getattr(e, "ctx", None):
            typer.echo(e.ctx.get_help())
            sys.exit(0)
        typer.echo(f"cfg-tui: error: {e.format_message()}", err=True)
        sys.exit(2 if e.exit_code == 2 else 1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
