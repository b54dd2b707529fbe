"""The machine panel: GPUs through a made-up NVML, the host and processes through psutil for real,
and the panel in a small app (its readings on a worker thread, failures as one line)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType, SimpleNamespace

import psutil
import pytest
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot

from core.machine import GpuReading, HostReading, MachineProbe, MachineReading, ProcessReading
from tui.widgets.machine_panel import MachinePanel, machine_lines

GIB = 1024**3


class FakeNVMLError(Exception):
    pass


def fake_nvml(broken: dict[tuple[int, str], bool] | None = None, init_error: str | None = None) -> ModuleType:
    """A pynvml with two GPUs; ``broken[(index, name)]`` makes that query raise NVMLError."""
    gpus = [
        dict(name="NVIDIA H200", util=87, used=int(41.2 * GIB), total=int(139.8 * GIB), temp=71,
             power=312_000, limit=700_000),
        dict(name="NVIDIA H100 80GB HBM3", util=3, used=1 * GIB, total=80 * GIB, temp=40,
             power=71_400, limit=350_000),
    ]  # fmt: skip
    broken = broken or {}
    nvml = ModuleType("pynvml")
    nvml.calls = {"init": 0, "shutdown": 0}  # type: ignore[attr-defined]

    def answer(name: str, value: Callable[[dict], object]) -> Callable[..., object]:
        def query(handle: int, *args: object) -> object:
            if broken.get((handle, name)):
                raise FakeNVMLError("Not Supported")
            return value(gpus[handle])

        return query

    def init() -> None:
        nvml.calls["init"] += 1  # type: ignore[attr-defined]
        if init_error:
            raise FakeNVMLError(init_error)

    def shutdown() -> None:
        nvml.calls["shutdown"] += 1  # type: ignore[attr-defined]

    nvml.NVMLError = FakeNVMLError  # type: ignore[attr-defined]
    nvml.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    nvml.nvmlInit = init  # type: ignore[attr-defined]
    nvml.nvmlShutdown = shutdown  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: len(gpus)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda index: index  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetName = answer("name", lambda g: g["name"])  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetUtilizationRates = answer(  # type: ignore[attr-defined]
        "util", lambda g: SimpleNamespace(gpu=g["util"], memory=10)
    )
    nvml.nvmlDeviceGetMemoryInfo = answer(  # type: ignore[attr-defined]
        "memory", lambda g: SimpleNamespace(used=g["used"], total=g["total"], free=g["total"] - g["used"])
    )
    nvml.nvmlDeviceGetTemperature = answer("temp", lambda g: g["temp"])  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetPowerUsage = answer("power", lambda g: g["power"])  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetEnforcedPowerManagementLimit = answer(  # type: ignore[attr-defined]
        "limit", lambda g: g["limit"]
    )
    return nvml


def use_nvml(monkeypatch: pytest.MonkeyPatch, nvml: ModuleType | None) -> None:
    """``import pynvml`` in core.machine finds ``nvml`` (None: raises ImportError)."""
    monkeypatch.setitem(sys.modules, "pynvml", nvml)


def shown(lines: object, width: int) -> str:
    return "\n".join(line.plain for line in lines.wrapped(width))  # type: ignore[attr-defined]


# --- GPUs -----------------------------------------------------------------------------------------


def test_two_gpus_are_read_and_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml()
    use_nvml(monkeypatch, nvml)
    probe = MachineProbe()
    reading = probe.read(None)
    probe.read(None)
    assert nvml.calls["init"] == 1  # once, not every reading
    assert reading.gpu_note is None
    first, second = reading.gpus
    assert first == GpuReading(0, "NVIDIA H200", 87.0, int(41.2 * GIB), int(139.8 * GIB), 71.0, 312.0, 700.0)
    assert (second.index, second.name, second.utilisation) == (1, "NVIDIA H100 80GB HBM3", 3)
    assert second.power == 71.4 and second.memory_total == 80 * GIB
    wide = shown(machine_lines(reading, None), 100).splitlines()
    assert wide[0] == "GPU0 H200  util 87%  mem 41.2/139.8 GiB  71°C  312/700 W"
    assert wide[1] == "GPU1 H100 80GB HBM3  util 3%  mem 1.0/80.0 GiB  40°C  71/350 W"
    assert wide[2].startswith("CPU ") and " cores  load " in wide[2] and "  RAM " in wide[2]
    assert wide[3] == "no trainer followed"
    probe.close()
    assert nvml.calls["shutdown"] == 1


def test_a_narrow_pane_wraps_between_items_and_keeps_every_number(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, fake_nvml())
    reading = MachineProbe().read(None)
    narrow = shown(machine_lines(reading, None), 40).splitlines()
    assert max(len(line) for line in narrow) <= 40
    assert narrow[:4] == [
        "GPU0 H200  util 87%  mem 41.2/139.8 GiB",
        "71°C  312/700 W",
        "GPU1 H100 80GB HBM3  util 3%",
        "mem 1.0/80.0 GiB  40°C  71/350 W",
    ]


def test_an_unsupported_query_leaves_out_that_figure_only(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, fake_nvml(broken={(1, "util"): True, (0, "limit"): True, (1, "temp"): True}))
    reading = MachineProbe().read(None)
    first, second = reading.gpus
    assert second.utilisation is None and second.temperature is None
    assert second.memory_used == 1 * GIB and second.power == 71.4 and second.power_limit == 350
    assert first.power_limit is None and first.power == 312 and first.utilisation == 87
    text = shown(machine_lines(reading, None), 100).splitlines()
    assert text[0] == "GPU0 H200  util 87%  mem 41.2/139.8 GiB  71°C  312 W"
    assert text[1] == "GPU1 H100 80GB HBM3  mem 1.0/80.0 GiB  71/350 W"


def test_a_gpu_whose_handle_fails_is_listed_without_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml()

    def handle(index: int) -> int:
        if index == 1:
            raise FakeNVMLError("GPU is lost")
        return index

    nvml.nvmlDeviceGetHandleByIndex = handle  # type: ignore[attr-defined]
    use_nvml(monkeypatch, nvml)
    reading = MachineProbe().read(None)
    assert reading.gpus[1] == GpuReading(1) and reading.gpus[0].utilisation == 87
    assert shown(machine_lines(reading, None), 100).splitlines()[1] == "GPU1  no figures from NVML"


def test_without_a_driver_the_panel_says_why_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml(init_error="Driver Not Loaded")
    use_nvml(monkeypatch, nvml)
    probe = MachineProbe()
    reading = probe.read(None)
    for _ in range(3):
        assert probe.read(None).gpus == []
    assert nvml.calls["init"] == 1  # the failure is remembered, not retried every second
    assert reading.gpus == [] and reading.gpu_note == "no NVIDIA GPU (NVML: Driver Not Loaded)"
    assert reading.host.memory_total and reading.host.memory_total > 0
    first_line = shown(machine_lines(reading, None), 100).splitlines()[0]
    assert first_line == "no NVIDIA GPU (NVML: Driver Not Loaded)"
    probe.close()
    assert nvml.calls["shutdown"] == 0  # never started


def test_without_nvidia_ml_py_the_panel_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, None)
    reading = MachineProbe().read(None)
    assert reading.gpus == [] and "no NVIDIA GPU" in (reading.gpu_note or "")
    assert shown(machine_lines(reading, None), 100).startswith("no NVIDIA GPU (NVML: nvidia-ml-py")


def test_no_gpus_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml()
    nvml.nvmlDeviceGetCount = lambda: 0  # type: ignore[attr-defined]
    use_nvml(monkeypatch, nvml)
    reading = MachineProbe().read(None)
    assert reading.gpus == [] and reading.gpu_note == "no NVIDIA GPU (NVML finds none)"


# --- host and processes ---------------------------------------------------------------------------


def busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_host_cpu_is_measured_between_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, None)
    probe = MachineProbe()
    assert probe.read(None).host.cpu_percent is None  # no span to measure over yet
    time.sleep(0.3)
    busy(0.3)
    host = probe.read(None).host
    assert host.cpu_percent is not None and 0 < host.cpu_percent <= 100
    assert host.cores == psutil.cpu_count() and host.load is not None and host.load >= 0
    assert host.memory_total and 0 < (host.memory_used or 0) < host.memory_total
    # From a new thread each time, as the panel's workers read: still measured (psutil's own
    # cpu_percent keeps its last sample per thread and would say 0.0 here).
    time.sleep(0.3)
    busy(0.3)
    seen: list[HostReading] = []
    thread = threading.Thread(target=lambda: seen.append(probe.read(None).host))
    thread.start()
    thread.join()
    assert seen[0].cpu_percent is not None and seen[0].cpu_percent > 0


def test_this_process_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, None)
    probe = MachineProbe()
    first = probe.read(os.getpid()).process
    assert first is not None and first.alive and first.pid == os.getpid()
    assert first.rss is not None and first.rss > 0
    assert first.cpu_percent is None  # CPU % is a difference between two readings
    busy(0.3)
    second = probe.read(os.getpid()).process
    assert second is not None and second.cpu_percent is not None and second.cpu_percent > 0
    text = shown(machine_lines(probe.read(os.getpid()), os.getpid()), 100).splitlines()[-1]
    assert text.startswith(f"trainer pid {os.getpid()}  ") and "  CPU " in text and "  RSS " in text


def test_a_trainer_s_child_processes_are_counted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, None)
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run([sys.executable, '-c', "
         "'import time; time.sleep(60)'])"]
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not psutil.Process(parent.pid).children():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        probe = MachineProbe()
        probe.read(parent.pid)
        process = probe.read(parent.pid).process
        assert process is not None and process.alive and process.processes == 2
        own = psutil.Process(parent.pid).memory_info().rss
        assert process.rss is not None and process.rss > own
        assert "2 processes" in shown(machine_lines(probe.read(parent.pid), parent.pid), 100)
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait(timeout=30)


def test_a_process_that_has_exited_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, None)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    process = MachineProbe().read(child.pid).process
    assert process == ProcessReading(child.pid, alive=False)
    reading = MachineReading([], "none", HostReading(None, None, None, None, None), process)
    assert shown(machine_lines(reading, child.pid), 100).splitlines()[-1] == f"trainer pid {child.pid} gone"


def test_a_followed_process_that_exits_is_gone_even_before_it_is_reaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app is the parent of the trainers it starts: one that exits is a zombie until then."""
    use_nvml(monkeypatch, None)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    probe = MachineProbe()
    try:
        process = probe.read(child.pid).process
        assert process is not None and process.alive
        assert child.stdin is not None
        child.stdin.close()  # it exits by itself; nothing is signalled
        deadline = time.monotonic() + 30
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.05)
        assert probe.read(child.pid).process == ProcessReading(child.pid, alive=False)
    finally:
        child.wait(timeout=60)
    assert probe.read(child.pid).process == ProcessReading(child.pid, alive=False)


@pytest.mark.parametrize("pid", [0, -1, None])
def test_no_pid_is_no_process(monkeypatch: pytest.MonkeyPatch, pid: int | None) -> None:
    use_nvml(monkeypatch, None)
    reading = MachineProbe().read(pid)
    assert reading.process is None
    assert shown(machine_lines(reading, pid), 100).splitlines()[-1] == "no trainer followed"


# --- the panel in an app --------------------------------------------------------------------------


FAKE = MachineReading(
    gpus=[
        GpuReading(0, "NVIDIA H200", 87, int(41.2 * GIB), int(139.8 * GIB), 71, 312, 700),
        GpuReading(1, "NVIDIA H200", 12, 2 * GIB, int(139.8 * GIB), 35, 80, 700),
    ],
    gpu_note=None,
    host=HostReading(35.0, 16, 4.1, 12 * GIB, int(125.8 * GIB)),
    process=None,
)


class FakeProbe(MachineProbe):
    """Gives FAKE (with the asked pid's process), or raises ``error``; records the pids asked for."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.error = error
        self.pids: list[int | None] = []
        self.gate = threading.Event()
        self.gate.set()
        self.reading_now = 0
        self.most_at_once = 0

    def read(self, pid: int | None) -> MachineReading:
        self.reading_now += 1
        self.most_at_once = max(self.most_at_once, self.reading_now)
        try:
            self.gate.wait(30)
            self.pids.append(pid)
            if self.error is not None:
                raise self.error
            process = None if pid is None else ProcessReading(pid, True, 180.0, int(2.3 * GIB))
            return MachineReading(FAKE.gpus, None, FAKE.host, process)
        finally:
            self.reading_now -= 1


class PanelApp(App):
    CSS = "MachinePanel { border: round white; }"

    def __init__(self, probe: MachineProbe) -> None:
        super().__init__()
        self.probe = probe

    def compose(self) -> ComposeResult:
        yield MachinePanel(probe=self.probe, interval=0.05, id="machine", classes="pane")


def on_screen(panel: MachinePanel) -> list[str]:
    """The panel's rows as drawn, border included."""
    return [strip.text for strip in panel.render_lines(Region(0, 0, *panel.outer_size))]


async def wait_for(pilot: Pilot, condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


@pytest.mark.asyncio
@pytest.mark.parametrize("width", [44, 104])
async def test_the_panel_shows_the_readings(width: int) -> None:
    probe = FakeProbe()
    app = PanelApp(probe)
    async with app.run_test(size=(width, 20)) as pilot:
        panel = app.query_one(MachinePanel)
        await wait_for(pilot, lambda: panel.last is not None, "a reading")
        await pilot.pause()
        rows = on_screen(panel)
        text = "\n".join(rows)
        assert "machine" in rows[0]  # the border title
        for figure in ("GPU0 H200", "GPU1 H200", "util 87%", "util 12%", "mem 41.2/139.8 GiB", "71°C",
                       "312/700 W", "CPU 35% of 16 cores", "load 4.1", "RAM 12.0/125.8 GiB",
                       "no trainer followed"):  # fmt: skip
            assert figure in text, figure
        assert all(len(row) <= width for row in rows)
        if width > 100:
            assert len(rows) == 2 + 4  # a line each: two GPUs, the host, the trainer
        panel.watch_pid(1234)
        await wait_for(pilot, lambda: "trainer pid 1234" in "\n".join(on_screen(panel)), "the trainer")
        assert "CPU 180%" in "\n".join(on_screen(panel)) and "RSS 2.3 GiB" in "\n".join(on_screen(panel))
        count = len(probe.pids)
        await wait_for(pilot, lambda: len(probe.pids) >= count + 3, "readings about every interval")
        assert probe.pids[-1] == 1234
        panel.watch_pid(None)
        await wait_for(pilot, lambda: "no trainer followed" in "\n".join(on_screen(panel)), "no trainer")


@pytest.mark.asyncio
async def test_a_failing_reading_is_one_line_and_the_app_goes_on() -> None:
    probe = FakeProbe(error=RuntimeError("NVML went away\nand took a long message with it " + "x" * 80))
    app = PanelApp(probe)
    async with app.run_test(size=(60, 20)) as pilot:
        panel = app.query_one(MachinePanel)
        await wait_for(pilot, lambda: len(probe.pids) >= 3, "several failed readings")
        await pilot.pause()
        assert app.is_running
        rows = on_screen(panel)
        assert len(rows) == 3  # border, one line, border
        assert rows[1].strip("│ ").startswith("cannot read the machine: RuntimeError: NVML went away and")
        probe.error = None  # it recovers on the next reading
        await wait_for(pilot, lambda: "util 87%" in "\n".join(on_screen(panel)), "a reading again")
        assert panel.last is not None


@pytest.mark.asyncio
async def test_a_slow_reading_neither_blocks_the_app_nor_piles_up() -> None:
    probe = FakeProbe()
    probe.gate.clear()
    app = PanelApp(probe)
    try:
        async with app.run_test(size=(60, 20)) as pilot:
            panel = app.query_one(MachinePanel)
            started = time.monotonic()
            await pilot.pause(0.5)  # ten intervals while the first reading hangs
            assert time.monotonic() - started < 5
            assert probe.most_at_once == 1 and probe.pids == []
            assert "reading the machine" in "\n".join(on_screen(panel))
            probe.gate.set()
            await wait_for(pilot, lambda: panel.last is not None, "the reading")
            assert probe.most_at_once == 1
    finally:
        probe.gate.set()
