"""The machine the run trains on, as one would otherwise watch it in nvitop or btop beside the app:
each NVIDIA GPU's utilisation, memory, temperature and power, the host's CPU and memory, and the
followed trainer's CPU and memory, about once a second.

Readings are taken on a worker thread, as NVML can be slow (and hang on a GPU in trouble): the next
reading waits for the last rather than piling up behind it, and a reading that fails is one line in
the pane, never a crash. Lines wrap between their items, so a narrow pane shows every number whole.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import Static
from textual.worker import Worker

from core.machine import GpuReading, MachineProbe, MachineReading, ProcessReading
from tui.widgets.run_stats import StatLines

GIB = 1024**3
MIB = 1024**2
MISSING = "—"
WAITING_TEXT = "reading the machine…"


def gib_pair(used: int, total: int) -> str:
    return f"{used / GIB:.1f}/{total / GIB:.1f} GiB"


def size(amount: int) -> str:
    return f"{amount / GIB:.1f} GiB" if amount >= GIB else f"{amount / MIB:.0f} MiB"


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0f}%"


def short_name(name: str) -> str:
    """The name less its maker, which every name NVML gives starts with: "NVIDIA H200" → "H200"."""
    return name.removeprefix("NVIDIA ").strip() or name


def gpu_items(gpu: GpuReading) -> list[Text]:
    """A GPU's figures, leaving out what NVML could not tell."""
    title = f"GPU{gpu.index}" + (f" {short_name(gpu.name)}" if gpu.name else "")
    items = [Text(title, style="bold")]
    if gpu.utilisation is not None:
        items.append(Text(f"util {gpu.utilisation:.0f}%"))
    if gpu.memory_used is not None and gpu.memory_total is not None:
        items.append(Text(f"mem {gib_pair(gpu.memory_used, gpu.memory_total)}"))
    if gpu.temperature is not None:
        items.append(Text(f"{gpu.temperature:.0f}°C"))
    if gpu.power is not None:
        limit = f"/{gpu.power_limit:.0f}" if gpu.power_limit is not None else ""
        items.append(Text(f"{gpu.power:.0f}{limit} W"))
    if len(items) == 1:
        items.append(Text("no figures from NVML", style="dim"))
    return items


def process_items(pid: int | None, process: ProcessReading | None) -> list[Text]:
    if pid is None or pid <= 0 or process is None:
        return [Text("no trainer followed", style="dim")]
    if not process.alive:
        return [Text(f"trainer pid {process.pid} gone", style="dim")]
    items = [Text(f"trainer pid {process.pid}", style="bold")]
    if process.processes > 1:  # torchrun's ranks or data loaders, counted in the figures
        items.append(Text(f"{process.processes} processes"))
    items.append(Text(f"CPU {percent(process.cpu_percent)}"))
    items.append(Text(f"RSS {MISSING if process.rss is None else size(process.rss)}"))
    return items


def machine_lines(reading: MachineReading, pid: int | None) -> StatLines:
    """A line per GPU (or the one line saying why there is none), the host's, the trainer's."""
    lines = [gpu_items(gpu) for gpu in reading.gpus]
    if not reading.gpus:
        lines.append([Text(reading.gpu_note or "no NVIDIA GPU", style="dim")])
    host = reading.host
    cores = f" of {host.cores} cores" if host.cores else ""
    host_items = [Text(f"CPU {percent(host.cpu_percent)}{cores}")]
    if host.load is not None:
        host_items.append(Text(f"load {host.load:.1f}"))
    if host.memory_used is not None and host.memory_total is not None:
        host_items.append(Text(f"RAM {gib_pair(host.memory_used, host.memory_total)}"))
    lines.append(host_items)
    lines.append(process_items(pid, reading.process))
    return StatLines(lines)


def failure_text(error: BaseException) -> str:
    """One line, whatever the error's message holds."""
    message = " ".join(str(error).split())
    return f"cannot read the machine: {type(error).__name__}" + (f": {message}" if message else "")


class MachinePanel(Static):
    """GPUs, host and trainer, refreshed every ``interval`` seconds; :meth:`watch_pid` says which
    trainer to follow. ``probe`` is for tests; the panel makes (and closes) its own otherwise."""

    DEFAULT_CSS = """
    MachinePanel {
        height: auto;
    }
    MachinePanel.-failed {
        text-wrap: nowrap;
        text-overflow: ellipsis;
        color: $text-error;
    }
    """

    class Reading(Message, bubble=False):
        """A reading taken on the worker thread, for the UI thread to show."""

        def __init__(self, pid: int | None, reading: MachineReading | None, error: str | None) -> None:
            super().__init__()
            self.pid = pid
            self.reading = reading
            self.error = error

    def __init__(
        self,
        probe: MachineProbe | None = None,
        interval: float = 1.0,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(Text(WAITING_TEXT, style="dim"), id=id, classes=classes)
        self.border_title = "machine"
        self._owns_probe = probe is None
        self.probe = probe or MachineProbe()
        self.interval = interval
        self.followed_pid: int | None = None
        self.last: MachineReading | None = None
        """The last reading shown; None before the first or after a failed one."""
        self._worker: Worker | None = None

    def on_mount(self) -> None:
        self.set_interval(self.interval, self._tick)
        self._tick()

    def on_unmount(self) -> None:
        if self._owns_probe:
            self.probe.close()

    def watch_pid(self, pid: int | None) -> None:
        """Follow the trainer with this pid (None: no trainer); shown from the next reading, taken now."""
        if pid == self.followed_pid:
            return
        self.followed_pid = pid
        if self.is_mounted:
            self._tick()

    def _tick(self) -> None:
        if self._worker is not None and not self._worker.is_finished:
            return  # the last reading is still under way (a slow NVML): never queue behind it
        if not self.screen.is_current:
            return  # nobody is looking
        self._worker = self._read()

    @work(thread=True, exclusive=True, group="machine", name="Machine reading", exit_on_error=False)
    def _read(self) -> None:
        pid = self.followed_pid
        try:
            reading = self.probe.read(pid)
            while pid != self.followed_pid:  # watch_pid came during the reading: read the new one
                pid = self.followed_pid
                reading = self.probe.read(pid)
        except Exception as error:
            self.post_message(self.Reading(pid, None, failure_text(error)))
        else:
            self.post_message(self.Reading(pid, reading, None))

    def on_machine_panel_reading(self, message: Reading) -> None:
        self.last = message.reading
        self.set_class(message.reading is None, "-failed")
        if message.reading is None:
            self.update(Text(message.error or "cannot read the machine"))
        else:
            self.update(machine_lines(message.reading, message.pid))
