import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.runs import (
    MetricsTail,
    RunConfig,
    RunDir,
    RunError,
    RunStatus,
    checkpoint_file,
    find_runs,
    gone_text,
)
from tests.conftest import run_config
from tui.format import RunRow


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
    run.write_status(dataclasses.replace(run.status(), pid=0))  # never a live process (kill: a group)
    assert run.liveness() == "dead"
    run.write_status(dataclasses.replace(run.status(), pid=-1))  # kill(-1) would signal every process
    with pytest.raises(RunError, match=r"status\.json is not a usable status \(pid must be a whole number"):
        run.liveness()
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


def test_run_config_round_trips_and_reads_older_files(tmp_path: Path) -> None:
    config = run_config(steps=7)
    assert RunConfig.from_dict(config.to_dict()) == config
    older = config.to_dict()
    for key in ("version", "processes", "versions", "created", "command"):
        del older[key]  # keys that runs made before them lack
    for key in ("channels_last", "sync_bn", "compile"):
        del older["train"][key]
    older["from_the_future"] = {"kept": True}
    run = RunDir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(older))
    read = run.config()
    assert read.processes == 1 and read.train.steps == 7 and read.train.channels_last
    assert read.extra == {"from_the_future": {"kept": True}}
    run.write_config(read.with_steps(9))
    assert json.loads((tmp_path / "config.json").read_text())["from_the_future"] == {"kept": True}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("model"), "has unusable settings (no 'model')"),
        (lambda d: d["train"].update(lr=-1), "has unusable settings (lr must be"),
        (lambda d: d["train"].update(momentum=0.9), "unknown training settings: momentum"),
        (lambda d: d["data"].pop("fingerprint"), "has unusable settings (no 'fingerprint')"),
    ],
)
def test_an_unusable_config_is_one_line(tmp_path: Path, change, message: str) -> None:
    config = run_config().to_dict()
    change(config)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError) as info:
        RunDir.open(tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_run_status_round_trips_and_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    status = RunStatus.now("stopped", 5, 10, checkpoint_step=5, device="cpu", last_loss=0.5, reason="asked")
    assert RunStatus.from_dict(status.to_dict()) == status
    assert "reason" not in RunStatus.now("running", 1, 2).to_dict()  # None is left out
    older = {"state": "finished", "pid": 7, "host": "h", "step": 3, "total_steps": 3, "updated": 2}
    assert RunStatus.from_dict(older).checkpoint_step is None
    refused = [({"step": 1}, "no 'state'"), ({"state": "paused"}, "unknown state 'paused'"),
               ({"state": "running", "pid": "x"}, 'pid must be a whole number .* not "x"')]  # fmt: skip
    for bad, message in refused:
        with pytest.raises(RunError, match=message):
            RunStatus.from_dict(bad)
    run = RunDir.create(tmp_path / "run", run_config())
    run.status_path.write_text('{"state": "running", "step": "many"}')
    with pytest.raises(RunError, match=r"status\.json is not a usable status"):
        run.liveness()
    assert RunRow.of(run).state == "unreadable"  # the run list shows it, and does not fail


def test_a_trainer_killed_by_a_signal_is_reported_with_the_signal_and_its_checkpoint(tmp_path: Path) -> None:
    """Issue 17: a killed trainer's reason names the signal, not its last progress line."""
    run = RunDir.create(tmp_path / "r", run_config(steps=30))
    run.write_status(dataclasses.replace(RunStatus.now("running", 10, 30), checkpoint_step=5))
    run.log_path.write_text("step 10/30 loss 1.3693 48 img/s\n")
    assert run.end_reason(-signal.SIGKILL) == (
        "killed by SIGKILL (signal 9) (kill -9, or the kernel when memory ran out); last checkpoint at step 5"
    )
    assert run.end_reason(-signal.SIGTERM).startswith("killed by SIGTERM (signal 15)")
    assert gone_text(run.status()) == "process gone (killed or crashed), last checkpoint at step 5"
    run.write_status(dataclasses.replace(RunStatus.now("failed", 10, 30), reason="out of memory"))
    assert run.end_reason(1) == "out of memory"  # what the trainer recorded, when it did


def test_a_real_killed_trainer_process_reads_as_killed(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r", run_config(steps=30))
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    process.kill()
    assert "killed by SIGKILL" in run.end_reason(process.wait()) and "no checkpoint yet" in run.end_reason(-9)
