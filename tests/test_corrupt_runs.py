"""Corrupted run folders (issue 18): every damage a hand edit, a full disk, another program or an attacker
can leave in a run folder, each put into one run beside a good one, and each read three ways:

- ``cfg-tui runs FOLDER`` (in-process): exit 0, the good run listed, the bad one ``unreadable`` (or,
  when only skipped lines or snapshots are damaged, listed with its state);
- ``cfg-tui runs FOLDER --detail bad``: exit 2 with one stderr line naming the file and the problem,
  or exit 0 when the damage is only lines skipped or snapshots not found;
- ``core.lifecycle.prepare_resume``: the run, or a one-line ValueError (RunError, SettingsError)
  naming the file; never another exception. Nothing here trains.

A FIFO in place of a run file would block ``open`` for ever: every case runs under an alarm, so that
a reader that hangs fails its case instead of the whole test run.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.lifecycle import prepare_resume
from core.run_files import RunStatus
from core.runs import MetricsTail, RunDir, RunError, find_runs, parse_record
from tests.conftest import run_config
from tui.cli import run
from tui.format import RunRow

HANG_SECONDS = 10
"""Longer than any read of a small run takes; a reader blocked on a FIFO is stopped after it."""


class Hung(Exception):
    """A reader blocked past :data:`HANG_SECONDS`."""


@contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Raise :class:`Hung` in the main thread if the block takes longer than ``seconds``."""

    def expired(signum: int, frame: object) -> None:
        raise Hung(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- the damage ---------------------------------------------------------------------------------------


def write(name: str, data: bytes | str) -> Callable[[Path], None]:
    """Replace run file ``name`` with ``data``."""

    def damage(run: Path) -> None:
        target = run / name
        target.unlink(missing_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)

    return damage


def edit(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    """Change a key of JSON file ``name`` (NaN and Infinity written as Python's json writes them)."""

    def damage(run: Path) -> None:
        d = json.loads((run / name).read_text())
        change(d)
        (run / name).write_text(json.dumps(d))

    return damage


def config(section: str | None, **values: object) -> Callable[[Path], None]:
    return edit("config.json", lambda d: (d[section] if section else d).update(values))


def status(**values: object) -> Callable[[Path], None]:
    return edit("status.json", lambda d: d.update(values))


def replace_with(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    """Put what ``make`` makes at ``name``'s place (a folder, a FIFO, a link)."""

    def damage(run: Path) -> None:
        target = run / name
        if target.is_dir() and not target.is_symlink():
            for path in target.iterdir():
                path.unlink()
            target.rmdir()
        else:
            target.unlink(missing_ok=True)
        make(target)

    return damage


def folder(path: Path) -> None:
    path.mkdir()


def fifo(path: Path) -> None:
    os.mkfifo(path)


def link_loop(path: Path) -> None:
    path.symlink_to(path.name)  # a link to itself: ELOOP


def dangling(path: Path) -> None:
    path.symlink_to("nowhere-at-all")


def remove(name: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        target = run / name
        if target.is_dir():
            target.rmdir()
        else:
            target.unlink()

    return damage


def append(*lines: bytes) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        with (run / "metrics.jsonl").open("ab") as f:
            f.write(b"".join(lines))

    return damage


GARBAGE_LINES = (
    b"not json at all\n",
    b"[1, 2, 3]\n",
    b"42\n",
    b'"a string"\n',
    b"null\n",
    b'{"step": "30", "loss": 0.5, "elapsed": 9.0}\n',  # a string step
    b'{"step": -5, "loss": 0.5}\n',
    b'{"step": 3.5, "loss": 0.5}\n',
    b'{"step": true, "loss": 0.5}\n',
    b'{"loss": 0.5, "elapsed": 1.0}\n',  # no step
    b'{"step": 31, "loss": NaN, "elapsed": 9.0}\n',
    b'{"step": 32, "loss": 0.5, "elapsed": Infinity}\n',
    b'{"step": 33, "loss": "low", "elapsed": 9.0}\n',
    b'{"step": 34, "loss": 0.5, "elapsed": null}\n',
    b'{"step": 35, "quality": "broken"}\n',
    b'{"step": 36, "elapsed": 9.5, "quality": {"frechet": "12", "accuracy": [], "guidance": "x"}}\n',
    b"\xff\xfe\x00 not utf-8 \xc3\x28\n",
    b'{"step": 37, "loss": 0.5, "tag": "\xff"}\n',  # a record with bytes that are not UTF-8
    b"[" * 50_000 + b"\n",  # nested deeper than the parser recurses
    b'{"step": 1' + b"0" * 5000 + b"}\n",  # an integer past Python's 4300 digits
    b'{"step": 38, "loss": 0.4}\n',  # a good record missing elapsed: kept
    b'{"step": 39, "loss": 0.3',  # a torn last line
)


@dataclass(frozen=True)
class Case:
    """One damage to the run ``bad``, and what each reader must say of it.

    listed: the state ``cfg-tui runs`` shows; detail: a text of the one-line error of ``--detail``
    (which must also name ``file``), or None when ``--detail`` shows the run (exit 0); resume: True
    when prepare_resume must refuse naming ``file``, False when it must accept, None when either is
    right (the damage is to what a resume re-creates or does not read)."""

    name: str
    damage: Callable[[Path], None]
    file: str
    listed: str = "unreadable"
    detail: str | None = ""
    resume: bool | None = True


# fmt: off
CASES = [
    # config.json: the file itself
    Case("config empty", write("config.json", b""), "config.json", detail="is empty"),
    Case("config whitespace", write("config.json", "  \n\t\n"), "config.json", detail="is empty"),
    Case("config truncated", lambda r: write("config.json", (r / "config.json").read_bytes()[:90])(r),
         "config.json", detail="is unreadable (Expecting"),
    Case("config binary garbage", write("config.json", bytes(range(256)) * 4), "config.json",
         detail="is not UTF-8 text"),
    Case("config NUL bytes", write("config.json", b"\x00" * 512), "config.json", detail="is unreadable"),
    Case("config a JSON list", write("config.json", "[1, 2]"), "config.json",
         detail="does not hold a JSON object"),
    Case("config a bare number", write("config.json", "7"), "config.json",
         detail="does not hold a JSON object"),
    Case("config nested too deep", write("config.json", "[" * 100_000), "config.json",
         detail="nested too deeply"),
    Case("config too large", write("config.json", b" " * (2 * 1024**2) + b"{}"), "config.json",
         detail="is too large"),
    Case("config a folder", replace_with("config.json", folder), "config.json",
         detail="is not a regular file (a folder)"),
    Case("config a FIFO", replace_with("config.json", fifo), "config.json",
         detail="is not a regular file (a FIFO)"),
    Case("config a link loop", replace_with("config.json", link_loop), "config.json",
         detail="is unreadable (Too many levels of symbolic links)"),
    Case("config a dangling link", replace_with("config.json", dangling), "config.json",
         detail="is a link to nothing"),
    # config.json: its settings
    Case("config huge channels", config("model", channels=[4096, 4096, 4096], num_residual_layers=20),
         "config.json", detail="has unusable settings ("),
    Case("config 10^12 channels", config("model", channels=[10**12]), "config.json",
         detail="has unusable settings"),
    Case("config 100 stages", config("model", channels=[8] * 100), "config.json",
         detail="has unusable settings"),
    Case("config string layers", config("model", num_residual_layers="2"), "config.json",
         detail="model num_residual_layers must be a whole number"),
    Case("config huge num_classes", config("model", num_classes=10**9), "config.json",
         detail="has unusable settings"),
    Case("config huge batch", config("train", batch_size=10**9), "config.json",
         detail="batch size must be"),  # a whole number, or at most 60,000: whichever check runs first
    Case("config float batch", config("train", batch_size=16.5), "config.json",
         detail="train batch_size must be a whole number"),
    Case("config unknown schedule", config("train", schedule="zigzag"), "config.json",
         detail="schedule must be one of"),
    Case("config negative seed", config("train", seed=-1), "config.json", detail="seed must be"),
    Case("config huge seed", config("train", seed=2**70), "config.json", detail="seed must be"),
    Case("config string steps", config("train", steps="100"), "config.json",
         detail="train steps must be a whole number"),
    Case("config NaN lr", config("train", lr=float("nan")), "config.json",
         detail="lr must be a finite number"),
    Case("config Infinity eta", config("train", eta=float("inf")), "config.json", detail="eta must be"),
    Case("config bool as steps", config("train", steps=True), "config.json", detail="must be a whole number"),
    Case("config unknown train key", config("train", momentum=0.9), "config.json",
         detail="unknown training settings: momentum"),
    Case("config no model", edit("config.json", lambda d: d.pop("model")), "config.json",
         detail="no 'model'"),
    Case("config no train", edit("config.json", lambda d: d.pop("train")), "config.json",
         detail="no 'train'"),
    Case("config model a list", config(None, model=[8, 16]), "config.json", detail="model must be an object"),
    Case("config no fingerprint", edit("config.json", lambda d: d["data"].pop("fingerprint")), "config.json",
         detail="no 'fingerprint'"),
    Case("config images a string", config("data", images="many"), "config.json",
         detail="data images must be a whole number"),
    Case("config huge processes", config(None, processes=10**6), "config.json", detail="processes must be"),
    Case("config command a string", config(None, command="rm -rf /"), "config.json",
         detail="command must be a list of texts"),
    # status.json
    Case("status empty", write("status.json", b""), "status.json", detail="is empty", resume=None),
    Case("status truncated", write("status.json", '{"state": "stopped", "st'), "status.json",
         detail="is unreadable", resume=None),
    Case("status binary garbage", write("status.json", bytes(range(255, -1, -1))), "status.json",
         detail="is not UTF-8 text", resume=None),
    Case("status a JSON list", write("status.json", '["stopped", 10]'), "status.json",
         detail="does not hold a JSON object", resume=None),
    Case("status a folder", replace_with("status.json", folder), "status.json",
         detail="is not a regular file (a folder)", resume=True),
    Case("status a FIFO", replace_with("status.json", fifo), "status.json",
         detail="is not a regular file (a FIFO)", resume=True),
    Case("status a link loop", replace_with("status.json", link_loop), "status.json",
         detail="Too many levels of symbolic links", resume=True),
    Case("status pid a string", status(pid="1234"), "status.json", detail="pid must be a whole number",
         resume=None),
    Case("status pid null", status(pid=None), "status.json",
         detail="pid must be a whole number from 0 to 2,147,483,647, not null", resume=None),
    Case("status pid huge", status(pid=2**40), "status.json", detail="pid must be", resume=None),
    Case("status pid 2^31", status(pid=2**31), "status.json", detail="pid must be", resume=None),
    Case("status pid negative", status(pid=-1), "status.json", detail="pid must be", resume=None),
    Case("status pid a float", status(pid=12.5), "status.json", detail="pid must be", resume=None),
    Case("status step a string", status(step="ten"), "status.json", detail="step must be", resume=None),
    Case("status step negative", status(step=-3), "status.json", detail="step must be", resume=None),
    Case("status updated a string", status(updated="yesterday"), "status.json",
         detail="updated must be a finite number", resume=None),
    Case("status updated Infinity", status(updated=float("inf")), "status.json",
         detail="updated must be a finite number", resume=None),
    Case("status elapsed NaN", status(elapsed=float("nan")), "status.json", detail="elapsed must be",
         resume=None),
    Case("status last_loss NaN", status(last_loss=float("nan")), "status.json", detail="last_loss must be",
         resume=None),
    Case("status checkpoint_step a string", status(checkpoint_step="5"), "status.json",
         detail="checkpoint_step must be", resume=None),
    Case("status unknown state", status(state="paused"), "status.json", detail="unknown state 'paused'",
         resume=None),
    Case("status state null", status(state=None), "status.json", detail="state must be text", resume=None),
    Case("status no state", edit("status.json", lambda d: d.pop("state")), "status.json",
         detail="no 'state'", resume=None),
    Case("status reason a list", status(reason=["a", "b"]), "status.json", detail="reason must be text",
         resume=None),
    # metrics.jsonl: damaged lines are skipped, the run reads as it was
    Case("metrics garbage lines", append(*GARBAGE_LINES), "metrics.jsonl", listed="stopped", detail=None,
         resume=False),
    Case("metrics all binary", write("metrics.jsonl", bytes(range(256)) * 64), "metrics.jsonl",
         listed="stopped", detail=None, resume=False),
    Case("metrics empty", write("metrics.jsonl", b""), "metrics.jsonl", listed="stopped", detail=None,
         resume=False),
    Case("metrics removed", remove("metrics.jsonl"), "metrics.jsonl", listed="stopped", detail=None,
         resume=False),
    # metrics.jsonl that is not a file: --detail names it; the list does not read it
    Case("metrics a FIFO", replace_with("metrics.jsonl", fifo), "metrics.jsonl", listed="stopped",
         detail="is not a regular file (a FIFO)", resume=True),
    Case("metrics a folder", replace_with("metrics.jsonl", folder), "metrics.jsonl", listed="stopped",
         detail="is not a regular file (a folder)", resume=True),
    Case("metrics a link loop", replace_with("metrics.jsonl", link_loop), "metrics.jsonl", listed="stopped",
         detail="Too many levels of symbolic links", resume=True),
    # checkpoints/: no snapshots, never an error while reading
    Case("checkpoints missing", remove("checkpoints"), "checkpoints", listed="stopped", detail=None,
         resume=None),
    Case("checkpoints a file", replace_with("checkpoints", lambda p: p.write_text("x")), "checkpoints",
         listed="stopped", detail=None, resume=True),
    Case("checkpoints a link loop", replace_with("checkpoints", link_loop), "checkpoints", listed="stopped",
         detail=None, resume=True),
    # what a resumed trainer replaces, not a regular file (or folder): refused before it writes anything
    Case("model a FIFO", replace_with("checkpoints/model.safetensors", fifo), "model.safetensors",
         listed="stopped", detail=None),
    Case("train-state a folder", replace_with("checkpoints/train-state.safetensors", folder),
         "train-state.safetensors", listed="stopped", detail=None),
    Case("previews a file", replace_with("previews", lambda p: p.write_text("x")), "previews",
         listed="stopped", detail=None),
    Case("lock a FIFO", replace_with("trainer.lock", fifo), "trainer.lock", listed="stopped", detail=None),
    Case("lock a folder", replace_with("trainer.lock", folder), "trainer.lock", listed="stopped",
         detail=None),
    Case("snapshot a folder", lambda r: (r / "checkpoints" / "step-000010.safetensors").mkdir(),
         "checkpoints", listed="stopped", detail=None, resume=None),
]
# fmt: on


def make_folder(tmp_path: Path) -> Path:
    """Runs ``good`` (finished) and ``bad`` (stopped at step 10 of 50, no checkpoint, two records)."""
    runs = tmp_path / "runs"
    good = RunDir.create(runs / "good", run_config(steps=20))
    good.append_metrics({"step": 10, "loss": 0.9, "lr": 1e-3, "images_per_sec": 100.0, "elapsed": 2.0})
    good.write_status(RunStatus.now("finished", 20, 20, elapsed=4.0))
    bad = RunDir.create(runs / "bad", run_config(steps=50))
    for step in (5, 10):
        bad.append_metrics({"step": step, "loss": 1.0 / step, "lr": 1e-3, "images_per_sec": 90.0,
                            "elapsed": step * 0.2, "memory_mb": 10.0})  # fmt: skip
    bad.append_metrics({"step": 10, "elapsed": 2.5, "quality": {"frechet": 50.0, "accuracy": 0.5}})
    bad.write_status(RunStatus.now("stopped", 10, 50, elapsed=2.0, last_loss=0.1, reason="asked to stop"))
    return runs


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """``cfg-tui ARGS`` in this process: exit code, stdout, stderr."""
    with no_hang(), pytest.raises(SystemExit) as exit:
        run(list(args))
    out, err = capsys.readouterr()
    return exit.value.code or 0, out, err


def listed_state(out: str, name: str) -> str:
    """The state column of run ``name`` in ``cfg-tui runs``' table."""
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) > 2 and cells[1] == name:
            return cells[2]
    raise AssertionError(f"run {name} is not listed:\n{out}")


def test_the_table_has_enough_cases() -> None:
    assert len(CASES) >= 20 and len({case.name for case in CASES}) == len(CASES)


def test_the_undamaged_runs_read_well(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs = make_folder(tmp_path)
    code, out, _ = cli(capsys, "runs", str(runs))
    assert code == 0 and listed_state(out, "good") == "finished" and listed_state(out, "bad") == "stopped"
    code, out, err = cli(capsys, "runs", str(runs), "--detail", "bad")
    assert code == 0 and "run bad" in out and err == ""
    assert prepare_resume(runs / "bad").path == runs / "bad"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_corrupted_run(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs = make_folder(tmp_path)
    bad = runs / "bad"
    case.damage(bad)

    code, out, err = cli(capsys, "runs", str(runs))
    assert code == 0 and err == "", err
    assert listed_state(out, "good") == "finished"
    assert listed_state(out, "bad") == case.listed

    code, out, err = cli(capsys, "runs", str(runs), "--detail", "bad")
    if case.detail is None:
        assert code == 0 and "run bad" in out and err == "", err
    else:
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("cfg-tui: error:"), err
        assert case.file in lines[0] and case.detail in lines[0], lines[0]

    with no_hang():
        try:
            resumed = prepare_resume(bad)
        except ValueError as e:  # RunError, SettingsError: what the CLI prints as one line
            assert case.resume is not False, f"refused: {e}"
            message = str(e)
            assert "\n" not in message and case.file in message, message
        else:
            assert case.resume is not True, "accepted"
            assert resumed.path == bad


# --- each reader alone --------------------------------------------------------------------------------


def test_damaged_metrics_lines_are_skipped_one_by_one(tmp_path: Path) -> None:
    runs = make_folder(tmp_path)
    bad = RunDir(runs / "bad")
    before = bad.metrics()
    append(*GARBAGE_LINES)(bad.path)
    after = bad.metrics()
    # The good record without elapsed is kept; the quality record with odd values is kept (its
    # readers show - for them); every other line is dropped.
    assert [r["step"] for r in after] == [5, 10, 10, 36, 38]
    assert after[:3] == before
    assert MetricsTail(bad.metrics_path).read_new() == after
    # A resume cuts the records back to the checkpoint's step: no TypeError on a string step.
    assert [r["step"] for r in bad.truncate_metrics(10)] == [5, 10, 10]
    assert [json.loads(line)["step"] for line in bad.metrics_path.read_text().splitlines()] == [5, 10, 10]


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        (b'{"step": 0}', True),
        (b'{"step": 5, "loss": 0.5, "lr": 0.001, "images_per_sec": 3, "elapsed": 1, "memory_mb": 0}', True),
        (b'{"step": 5, "quality": {}}', True),
        (b'{"step": 5, "loss": -1.5}', True),  # finite: a reader of positive losses skips it
        (b'{"step": 5, "extra": [1, 2]}', True),  # a newer cfg-tui's field
        (b'{"step": -1}', False),
        (b'{"step": 5.0}', False),
        (b'{"step": "5"}', False),
        (b'{"step": null}', False),
        (b'{"step": 5, "loss": null}', False),
        (b'{"step": 5, "lr": "1e-3"}', False),
        (b'{"step": 5, "images_per_sec": false}', False),
        (b'{"step": 5, "memory_mb": -Infinity}', False),
        (b'{"step": 5, "elapsed": 1e999}', False),  # parsed as infinity
        (b'{"step": 5, "quality": []}', False),
        (b"", False),
        (b"\xef\xbb\xbf{}", False),
    ],
)
def test_what_a_valid_record_is(line: bytes, kept: bool) -> None:
    assert (parse_record(line) is not None) is kept


def test_fifos_in_place_of_run_files_never_block(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", run_config())
    for name in ("status.json", "metrics.jsonl", "train.log"):
        os.mkfifo(run.path / name)
    with no_hang():
        with pytest.raises(RunError, match=r"status\.json is not a regular file \(a FIFO\)"):
            run.status()
        with pytest.raises(RunError, match=r"metrics\.jsonl is not a regular file \(a FIFO\)"):
            run.metrics()
        assert MetricsTail(run.metrics_path).read_new() == []  # the app polls it: never an error
        assert run.last_log_line() == ""
        assert "killed by SIGKILL" in run.end_reason(-9)
        assert RunRow.of(run).state == "unreadable"


def test_a_run_vanishing_while_listed_is_left_out_or_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = make_folder(tmp_path)
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: [*listdir(path), "ghost"])  # gone before its stat
    assert [r.path.name for r in find_runs(runs)] == ["bad", "good"]
    monkeypatch.undo()
    found = find_runs(runs)
    (runs / "bad" / "config.json").unlink()  # gone between the listing and the reading
    assert [RunRow.of(r).state for r in found] == ["unreadable", "finished"]
    assert find_runs(runs / "no-such-folder") == [] and find_runs(runs / "good" / "config.json") == []


def test_runs_coming_and_going_never_break_the_list(tmp_path: Path) -> None:
    """The app's Train screen lists the runs every 2 s while trainers create them and users delete
    them: a writer thread makes and removes runs while this one lists and reads them."""
    runs = make_folder(tmp_path)
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            path = runs / f"churn-{i % 3}"
            RunDir.create(path, run_config()).write_status(RunStatus.now("stopped", 1, 50))
            for name in ("status.json", "config.json", "metrics.jsonl"):
                (path / name).unlink(missing_ok=True)
            for sub in ("checkpoints", "previews"):
                (path / sub).rmdir()
            path.rmdir()
            i += 1

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        for _ in range(300):
            rows = {run.path.name: RunRow.of(run) for run in find_runs(runs)}
            assert rows["good"].state == "finished" and rows["bad"].state == "stopped"
            assert all(row.state in ("new", "stopped", "unreadable") for name, row in rows.items()
                       if name.startswith("churn"))  # fmt: skip
    finally:
        stop.set()
        writer.join()


def test_a_damaged_run_does_not_break_compare_of_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    runs = make_folder(tmp_path)
    append(*GARBAGE_LINES)(runs / "bad")
    status(pid="x")(runs / "bad")
    code, out, err = cli(capsys, "runs", "--compare", "good", "bad", "--runs", str(runs), "--json")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["bad"]["state"] == "unreadable" and rows["good"]["state"] == "finished"
    config("train", seed=-1)(runs / "bad")
    code, _, err = cli(capsys, "runs", "--compare", "good", "bad", "--runs", str(runs))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "config.json" in err
