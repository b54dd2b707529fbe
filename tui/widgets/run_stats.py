"""The followed run in three short lines: name and state, progress, device and checkpoint.

Each line is a few items ("step 500/500 (100%)", "450 img/s", …); where a line is wider than the
pane, it wraps between items, never inside one, so a narrow terminal shows every number whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import get_console
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from core.runs import RunDir, RunStatus, gone_text
from tui.format import format_duration

IDLE_TEXT = "No run followed.\nFill in the form and press ctrl+g,\nor pick a run below and press enter."
GAP = "  "
"""Between the items of a line."""

STATE_STYLES = {
    "running": "bold green",
    "starting": "bold green",
    "finished": "bold cyan",
    "stopped": "bold yellow",
    "failed": "bold red",
    "dead": "bold red",
}


@dataclass
class StatLines:
    """Lines of items, each line wrapped to the width it is given between its items (a Rich
    renderable, so that the pane's height follows its width)."""

    lines: list[list[Text]]

    def wrapped(self, width: int) -> list[Text]:
        width = max(width, 1)
        out: list[Text] = []
        for items in self.lines:
            line = Text()
            for item in items:
                if line.cell_len and line.cell_len + len(GAP) + item.cell_len > width:
                    out.append(line)
                    line = Text()
                if item.cell_len > width:  # a failed run's reason: wrapped at its spaces
                    *whole, line = item.wrap(get_console(), width)
                    out.extend(whole)
                    continue
                if line.cell_len:
                    line.append(GAP)
                line.append_text(item)
            out.append(line)
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("\n").join(self.wrapped(options.max_width))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = max((item.cell_len for items in self.lines for item in items), default=0)
        return Measurement(min(widest, options.max_width), options.max_width)

    def __str__(self) -> str:
        return "\n".join(GAP.join(item.plain for item in items) for items in self.lines)


def run_stats(
    run: RunDir,
    state: str,
    status: RunStatus | None,
    last: dict,
    batch_size: int | None,
    starting: str | None = None,
) -> StatLines:
    """The followed run in three lines of items (they fit the right column at 80 columns).

    Until its first record, a running run's progress line says what its trainer is doing: its
    status's phase, or ``starting`` (what the app knows of a trainer it launched that has not
    written its status yet)."""
    phase = starting or (status.phase if status and state == "running" else None)
    if starting:
        state = "starting"
    step = status.step if status else int(last.get("step", 0))
    total = status.total_steps if status else None
    ips = last.get("images_per_sec")
    eta = "—"
    if state == "running" and total and ips and batch_size:
        eta = format_duration((total - step) / (ips / batch_size))
    percent = f" ({100 * step / total:.0f}%)" if total else ""
    memory = last.get("memory_mb")
    checkpoint = status.checkpoint_step if status else None
    elapsed = status.elapsed if status and status.elapsed is not None else last.get("elapsed")
    first = [Text(run.path.name, style="bold"), Text(state, style=STATE_STYLES.get(state, "bold"))]
    reason = {"failed": status.reason if status else None, "dead": f"{gone_text(status)}; ctrl+r resumes"}
    if reason.get(state):
        first.append(Text(str(reason[state])))
    progress = [Text(f"step {step}/{total or '?'}{percent}")]
    if phase:
        progress.append(Text(f"{phase}…", style="italic"))
    else:
        progress.append(Text(f"{ips or 0:.0f} img/s"))
    if state == "running" and not phase:  # elsewhere it would only ever say "—"
        progress.append(Text(f"ETA {eta}"))
    where = [
        Text((status.device if status else None) or "?"),
        Text(f"mem {f'{memory:.0f} MB' if memory else '—'}"),
        Text(f"ckpt {checkpoint if checkpoint is not None else '—'}"),
        Text(f"elapsed {format_duration(elapsed) if elapsed is not None else '—'}"),
    ]
    return StatLines([first, progress, where])
