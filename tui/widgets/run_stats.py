"""The followed run in three short lines: name and state, progress, device and checkpoint."""

from __future__ import annotations

from rich.text import Text

from core.runs import RunDir, RunStatus
from tui.format import format_duration

IDLE_TEXT = "No run followed.\nFill in the form and press ctrl+g,\nor pick a run below and press enter."


STATE_STYLES = {
    "running": "bold green",
    "finished": "bold cyan",
    "stopped": "bold yellow",
    "failed": "bold red",
    "dead": "bold red",
}


def run_stats(run: RunDir, state: str, status: RunStatus | None, last: dict, batch_size: int | None) -> Text:
    """The followed run in three short lines (they fit the right column at 80 columns)."""
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
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{run.path.name}  ", style="bold")
    text.append(state, style=STATE_STYLES.get(state, "bold"))
    reason = {"failed": status.reason if status else None, "dead": "its process is gone; ctrl+r resumes"}
    if reason.get(state):
        text.append(f"  {reason[state]}")
    text.append(f"\nstep {step}/{total or '?'}{percent}  {ips or 0:.0f} img/s  ETA {eta}")
    text.append(
        f"\n{(status.device if status else None) or '?'}  mem {f'{memory:.0f} MB' if memory else '—'}  "
        f"ckpt {checkpoint if checkpoint is not None else '—'}  "
        f"elapsed {format_duration(elapsed) if elapsed is not None else '—'}"
    )
    return text
