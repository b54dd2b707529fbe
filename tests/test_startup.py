"""The command line starts without torch: ``--help``, ``runs`` and ``info`` load none of it.

Importing torch takes 2-3 s on the project's machines; these commands answer in about 0.3 s only
because nothing they import loads it. Each command runs in a fresh interpreter, which then reports
what it had loaded (timings are not asserted: they depend on the machine's load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.run_files import RunStatus
from core.runs import RunDir
from tests.conftest import run_config

HEAVY = ("torch", "torchvision", "safetensors.torch", "textual")

PROBE = f"""
import json, sys
from tui.cli import run
try:
    run(sys.argv[1:])
except SystemExit as e:
    code = e.code
loaded = sorted(n for n in {HEAVY!r} if n in sys.modules)
print(json.dumps({{"loaded": loaded, "exit": code}}), file=sys.stderr)
"""


def cfg_tui(*args: str) -> tuple[str, list[str], int | None]:
    """``cfg-tui ARGS`` in a fresh interpreter: its stdout, the heavy modules it had loaded when it
    finished, and its exit code."""
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0 and done.stderr.strip(), done.stderr
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return done.stdout, report["loaded"], report["exit"]


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder with one made-up run: a config, two loss records, a quality record, a status."""
    folder = tmp_path_factory.mktemp("runs")
    run = RunDir.create(folder / "demo", run_config(steps=50))
    run.append_metrics({"step": 10, "loss": 0.5, "lr": 1e-3, "images_per_sec": 100.0, "elapsed": 3.0})
    run.append_metrics({"step": 20, "loss": 0.4, "lr": 1e-3, "images_per_sec": 110.0, "elapsed": 6.0})
    run.append_metrics({"step": 20, "elapsed": 7.0, "quality": {"frechet": 12.5, "accuracy": 0.9}})
    run.write_status(RunStatus.now("stopped", 20, 50, elapsed=6.0))
    return folder


COMMANDS = {
    "help": (["--help"], "Usage"),
    "sample help": (["sample", "--help"], "--per-class"),
    "train help": (["train", "--help"], "--preset"),
    "eval help": (["eval", "--help"], "--guide"),
    "bench help": (["bench", "sample", "--help"], "--fast"),
    "runs": (["runs", "{runs}"], "demo"),
    "runs detail": (["runs", "{runs}", "--detail", "demo"], "quality during training"),
    "runs of a path": (["runs", "--detail", "{runs}/demo"], "run demo"),
    "info": (["info"], "4.715 MiB"),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_the_quick_commands_never_load_torch(name: str, runs_folder: Path) -> None:
    args, expected = COMMANDS[name]
    out, loaded, exit_code = cfg_tui(*(a.format(runs=runs_folder) for a in args))
    assert exit_code in (0, None), (name, out)
    assert expected in out, out
    assert loaded == [], f"cfg-tui {' '.join(args)} loaded {loaded}"


def test_info_without_torch_says_what_torch_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """The version (with its build) and the CPU threads are torch's own; the CUDA device is the
    driver's list, read here from a made-up one."""
    import torch

    from tui.cli import cpu_threads, cuda_device, torch_version

    assert torch_version() == torch.__version__
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads() == 3
    assert cuda_device(Path("/no/such/driver")) == "none"


def test_the_cuda_device_is_read_from_the_drivers_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.cli import cuda_device

    for bus, model in (("0000:3b:00.0", "NVIDIA H200"), ("0000:5e:00.0", "NVIDIA H100")):
        (tmp_path / bus).mkdir()
        (tmp_path / bus / "information").write_text(f"Model: \t\t {model}\nIRQ:   \t\t 42\n")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert cuda_device(tmp_path) == "NVIDIA H200 (and 1 more)"
    for visible, expected in (
        ("1", "NVIDIA H100"),
        ("", "none"),
        ("-1", "none"),
        ("1,0", "NVIDIA H100 (and 1 more)"),
    ):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert cuda_device(tmp_path) == expected, visible


def test_the_names_help_lists_are_the_implementations_names() -> None:
    """--help quotes core.choices (no torch); the modules that implement the choices agree with it."""
    from core.choices import SAMPLER_PRESETS, SOLVERS, describe_preset
    from core.sampling import SAMPLERS
    from core.solvers import ODE_STEPS, make_step

    assert list(SAMPLERS) == list(SAMPLER_PRESETS)
    for name, sampler in SAMPLERS.items():
        assert describe_preset(name) == sampler.describe()
    assert set(ODE_STEPS) < set(SOLVERS)
    for solver in ODE_STEPS:
        assert make_step(solver) is ODE_STEPS[solver]
