import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.runs import MetricsTail, RunDir, RunError, RunStatus, checkpoint_file, find_runs
from tests.conftest import run_config


def test_metrics_tail_reads_only_complete_new_lines(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", run_config())
    tail = MetricsTail(run.metrics_path)
    assert tail.read_new() == []
    run.append_metrics({"step": 1, "loss": 1.0})
    run.append_metrics({"step": 2, "loss": 0.5})
    with run.metrics_path.open("a") as f:
        f.write('{"step": 3, "lo')  # a writer caught mid-line
    assert [r["step"] for r in tail.read_new()] == [1, 2]
    with run.metrics_path.open("a") as f:
        f.write('ss": 0.25}\n')
    assert [r["step"] for r in tail.read_new()] == [3]
    assert tail.read_new() == [] and not tail.restarted
    run.truncate_metrics(1)  # a resume from step 1 rewrites the file
    assert [r["step"] for r in tail.read_new()] == [1] and tail.restarted


def test_torn_last_line_is_skipped_by_readers(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", run_config())
    run.append_metrics({"step": 1})
    with run.metrics_path.open("a") as f:
        f.write('{"step": 2')
    assert run.metrics() == [{"step": 1}]


def test_liveness_tells_running_from_dead(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", run_config())
    run.write_status(RunStatus.now("running", 5, 10))
    assert run.liveness() == "running"  # this process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    run.write_status(dataclasses.replace(run.status(), pid=child.pid))
    assert run.liveness() == "dead"
    for pid in (0, -1):  # never taken for a live process (os.kill would signal a group, or all)
        run.write_status(dataclasses.replace(run.status(), pid=pid))
        assert run.liveness() == "dead"
    run.write_status(RunStatus.now("stopped", 5, 10))
    assert run.liveness() == "stopped"


def test_create_open_and_find(tmp_path: Path) -> None:
    RunDir.create(tmp_path / "a", run_config(steps=1))
    (tmp_path / "b").mkdir()
    RunDir.create(tmp_path / "b", run_config(steps=2))  # an empty folder may become a run
    (tmp_path / "not-a-run").mkdir()
    os.utime(tmp_path / "a" / "config.json", (1, 1))
    assert [r.path.name for r in find_runs(tmp_path)] == ["b", "a"]
    with pytest.raises(RunError, match="already exists and is not empty"):
        RunDir.create(tmp_path / "a", run_config())
    with pytest.raises(RunError, match="is not a run"):
        RunDir.open(tmp_path / "not-a-run")
    (tmp_path / "a" / "config.json").write_text("[1, 2")
    with pytest.raises(RunError, match="unreadable"):
        RunDir.open(tmp_path / "a")
    with pytest.raises(RunError, match="has no checkpoint yet"):
        checkpoint_file(tmp_path / "b")
    assert json.loads((tmp_path / "b" / "config.json").read_text())["train"]["steps"] == 2
