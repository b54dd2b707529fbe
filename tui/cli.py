"""The ``cfg-tui`` command."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table

from core.checkpoint import CheckpointError
from core.data import DataError
from core.images import SamplesError
from core.runs import RunError
from core.settings import SettingsError
from core.unet import MiB, UNet, UNetConfig, model_size_bytes
from tui.commands import bench, data, eval, path, runs, sample, train
from tui.commands.common import parse_ints

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
    layers: int = typer.Option(2, help="Residual layers per stage."),
    embed_dim: int = typer.Option(40, help="Width of the time and label embeddings."),
) -> None:
    """Show the U-Net's size for a configuration and what this machine can run it on."""
    try:
        config = UNetConfig(parse_ints("--channels", channels), layers, embed_dim, embed_dim)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    model = UNet(config)
    table = Table(show_header=False, box=None)
    table.add_row("U-Net channels", ", ".join(map(str, config.channels)))
    table.add_row("residual layers / stage", str(config.num_residual_layers))
    table.add_row("embedding widths", f"t {config.t_embed_dim}, y {config.y_embed_dim}")
    table.add_row("parameters", f"{sum(p.numel() for p in model.parameters()):,}")
    table.add_row("size (params + buffers)", f"{model_size_bytes(model) / MiB:.3f} MiB")
    table.add_row("torch", torch.__version__)
    table.add_row("python", platform.python_version())
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    table.add_row("CUDA device", cuda)
    table.add_row("CPU threads", str(torch.get_num_threads()))
    Console().print(table)


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    runs: Path | None = typer.Option(
        None, help="Runs folder for the app (default: $CFG_TUI_RUNS or ./runs)."
    ),
    checkpoint: Path | None = typer.Option(None, help="The app's checkpoint (default: the bundled model)."),
) -> None:
    """cfg-tui: train and sample a class-conditional generator of MNIST digits.

    With no command, opens the terminal app.
    """
    if ctx.invoked_subcommand is None:
        from tui.app import CfgTuiApp
        from tui.settings import AppSettings

        defaults = AppSettings()
        settings = AppSettings(runs or defaults.runs_folder, checkpoint or defaults.checkpoint)
        CfgTuiApp(settings).run()


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
