"""What the machine is doing while a run trains, as nvitop and btop beside the app would show it:
each NVIDIA GPU through NVML, the host's CPU and memory, and the trainer's processes (psutil).

Torch-free (reading the machine must not load CUDA), and read-only: no process is ever signalled.
Any one figure the machine cannot give is None rather than a failed reading.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TypeVar

import psutil

T = TypeVar("T")

CPU_WINDOW = 0.5
"""Seconds: a host CPU % over a shorter span is mostly rounding of the kernel's clock ticks, so a
reading sooner than this after the last one repeats the last figure."""
CLOSE_WAIT = 1.0
"""Seconds close() waits for a reading in progress (a GPU in trouble can hang an NVML query)."""


@dataclass(frozen=True)
class GpuReading:
    """One GPU as NVML sees it; a figure NVML cannot give (unsupported, e.g. under MIG) is None."""

    index: int
    name: str | None = None
    utilisation: float | None = None
    """Percent of the last sample period in which a kernel was running (NVML's "gpu" rate)."""
    memory_used: int | None = None
    """Bytes."""
    memory_total: int | None = None
    temperature: float | None = None
    """°C, of the GPU die."""
    power: float | None = None
    """Watts drawn now."""
    power_limit: float | None = None
    """Watts: the limit the driver enforces."""


@dataclass(frozen=True)
class HostReading:
    cpu_percent: float | None
    """Busy share of all cores since the last reading, 0–100; None on the first reading."""
    cores: int | None
    """Logical cores."""
    load: float | None
    """One-minute load average."""
    memory_used: int | None
    """Bytes not available to new programs (total − available, as btop counts it)."""
    memory_total: int | None


@dataclass(frozen=True)
class ProcessReading:
    """The followed trainer: its process and every process under it (torchrun's ranks, data loaders)."""

    pid: int
    alive: bool
    cpu_percent: float | None = None
    """As top counts it: 100 per busy core, so above 100 over several cores; None until measured."""
    rss: int | None = None
    """Resident bytes, summed over the processes."""
    processes: int = 1


@dataclass(frozen=True)
class MachineReading:
    gpus: list[GpuReading]
    gpu_note: str | None
    """Why there are no GPUs ("no NVIDIA GPU (NVML: Driver Not Loaded)"); None when there are."""
    host: HostReading
    process: ProcessReading | None
    """None when no trainer is followed."""


def _busy_percent(before: tuple[float, ...], after: tuple[float, ...]) -> float | None:
    """psutil.cpu_percent's arithmetic on two cpu_times() samples of our own: psutil keeps its last
    sample per thread, and each reading runs on a new worker thread, so it would always say 0."""
    delta = {name: max(0.0, getattr(after, name) - getattr(before, name)) for name in after._fields}
    # Linux counts guest time in user and nice as well.
    total = sum(delta.values()) - delta.get("guest", 0.0) - delta.get("guest_nice", 0.0)
    idle = delta.get("idle", 0.0) + delta.get("iowait", 0.0)
    if total <= 0:
        return None
    return round(min(100.0, max(0.0, 100 * (total - idle) / total)), 1)


class MachineProbe:
    """Takes readings of the machine; keeps what makes the next one cheap and meaningful: NVML
    initialised once (or why it cannot be, not retried every second), the last CPU times, and the
    followed processes' psutil objects (CPU % is a difference between two readings of one object).

    Thread-safe: readings are taken on worker threads, one at a time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nvml: ModuleType | None = None
        self._nvml_note: str | None = None
        self._cpu_times = psutil.cpu_times()
        self._cpu_at = time.monotonic()
        self._cpu_percent: float | None = None
        self._root: psutil.Process | None = None
        self._gone: int | None = None
        """The followed pid once it has gone: never looked up again, as the number may be reused."""
        self._children: dict[int, psutil.Process] = {}

    def read(self, pid: int | None) -> MachineReading:
        """The GPUs, the host and the process ``pid`` with its descendants (None: no trainer)."""
        with self._lock:
            gpus, note = self._gpus()
            return MachineReading(gpus, note, self._host(), self._process(pid))

    def close(self) -> None:
        """Shut NVML down; a later read starts it again."""
        if not self._lock.acquire(timeout=CLOSE_WAIT):
            return  # a hung query holds NVML; the process's exit releases it anyway
        try:
            nvml, self._nvml, self._nvml_note = self._nvml, None, None
            if nvml is not None:
                with contextlib.suppress(Exception):
                    nvml.nvmlShutdown()
        finally:
            self._lock.release()

    # --- GPUs -------------------------------------------------------------------------------------

    def _started_nvml(self) -> ModuleType | None:
        if self._nvml is not None or self._nvml_note is not None:
            return self._nvml
        try:
            import pynvml
        except ImportError:
            self._nvml_note = "no NVIDIA GPU (NVML: nvidia-ml-py is not installed)"
            return None
        try:
            pynvml.nvmlInit()
        except Exception as error:  # NVMLError mostly; any failure here means no GPU to show
            self._nvml_note = f"no NVIDIA GPU (NVML: {error or type(error).__name__})"
            return None
        self._nvml = pynvml
        return pynvml

    def _gpus(self) -> tuple[list[GpuReading], str | None]:
        nvml = self._started_nvml()
        if nvml is None:
            return [], self._nvml_note
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as error:
            return [], f"no NVIDIA GPU (NVML: {error})"
        if count == 0:
            return [], "no NVIDIA GPU (NVML finds none)"
        return [self._gpu(nvml, index) for index in range(count)], None

    @staticmethod
    def _gpu(nvml: ModuleType, index: int) -> GpuReading:
        def ask(query: Callable[[], T]) -> T | None:
            try:
                return query()
            except nvml.NVMLError:
                return None

        handle = ask(lambda: nvml.nvmlDeviceGetHandleByIndex(index))
        if handle is None:  # e.g. a GPU that has fallen off the bus
            return GpuReading(index)
        name = ask(lambda: nvml.nvmlDeviceGetName(handle))
        rates = ask(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        memory = ask(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        power = ask(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        limit = ask(lambda: nvml.nvmlDeviceGetEnforcedPowerManagementLimit(handle))
        return GpuReading(
            index=index,
            name=name.decode() if isinstance(name, bytes) else name,  # bytes from older bindings
            utilisation=None if rates is None else float(rates.gpu),
            memory_used=None if memory is None else int(memory.used),
            memory_total=None if memory is None else int(memory.total),
            temperature=ask(lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))),
            power=None if power is None else power / 1000,  # NVML speaks milliwatts
            power_limit=None if limit is None else limit / 1000,
        )

    # --- host -------------------------------------------------------------------------------------

    def _host(self) -> HostReading:
        times, now = psutil.cpu_times(), time.monotonic()
        if now - self._cpu_at >= CPU_WINDOW:
            self._cpu_percent = _busy_percent(self._cpu_times, times)
            self._cpu_times, self._cpu_at = times, now
        try:
            load: float | None = psutil.getloadavg()[0]
        except (OSError, AttributeError):
            load = None
        memory = psutil.virtual_memory()
        return HostReading(
            self._cpu_percent, psutil.cpu_count(), load, memory.total - memory.available, memory.total
        )

    # --- the trainer ------------------------------------------------------------------------------

    def _process(self, pid: int | None) -> ProcessReading | None:
        if pid is None or pid <= 0:  # 0 and -1 are "no process" to us, never "all processes"
            self._root, self._children = None, {}
            return None
        if self._gone == pid:
            return ProcessReading(pid, alive=False)
        first = self._root is None or self._root.pid != pid
        if first:
            self._root, self._children, self._gone = None, {}, None
            try:
                self._root = psutil.Process(pid)
            except (psutil.NoSuchProcess, ValueError):
                self._gone = pid
                return ProcessReading(pid, alive=False)
        assert self._root is not None
        usage = _usage(self._root, first)
        if usage is None:
            self._root, self._children, self._gone = None, {}, pid
            return ProcessReading(pid, alive=False)
        cpu, rss = usage
        try:
            found = self._root.children(recursive=True)
        except psutil.Error:
            found = []
        children: dict[int, psutil.Process] = {}
        for child in found:
            # The same object as last time, so that its CPU % is measured over the interval.
            known = self._children.get(child.pid)
            child_usage = _usage(known or child, known is None)
            if child_usage is None:
                continue
            children[child.pid] = known or child
            if cpu is not None and child_usage[0] is not None:
                cpu += child_usage[0]  # a new child counts from its second reading
            if rss is not None and child_usage[1] is not None:
                rss += child_usage[1]
        self._children = children
        return ProcessReading(pid, True, None if cpu is None else round(cpu, 1), rss, 1 + len(children))


def _usage(process: psutil.Process, first: bool) -> tuple[float | None, int | None] | None:
    """(CPU % since this object's last call, None on its first; resident bytes), or None once the
    process has exited (a zombie waiting to be reaped included)."""
    try:
        if not process.is_running():  # exited, or its number reused by another process
            return None
        with process.oneshot():
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            cpu = process.cpu_percent(interval=None)
            try:
                rss: int | None = process.memory_info().rss
            except psutil.AccessDenied:
                rss = None
        return (None if first else cpu), rss
    except psutil.NoSuchProcess:  # ZombieProcess included
        return None
    except psutil.AccessDenied:  # another user's process: alive, figures unknown
        return None, None
