"""Hostile command lines (issue 18): each bad one is refused in one line on stderr, exit code 2, with
nothing written, before any work; run in this process, so the whole table takes seconds.

Each case names the words its refusal must contain, so that a case refused for another reason (a
typo in the table, a check that moved) fails. Where a refusal depends on memory, the memory free is
fixed at 4 GiB, so the table says the same on every machine.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from core.checkpoint import save_checkpoint
from core.configs import GiB
from core.trainer import new_model
from tests.conftest import SMALL
from tui.cli import run

FREE = 4 * GiB
"""The memory free, as far as the memory checks know."""
BASE = "--checkpoint {checkpoint} --preset lab --steps 1 --per-class 1 --digits 1"
"""A tiny sample, so that a case the command wrongly accepted would still end fast."""
TINY = "--channels 8,16 --layers 1 --embed-dim 8 --batch-size 16 --device cpu --steps 1"

# (command line, words of the refusal); {name}s are the paths of the `places` fixture.
CASES: list[tuple[str, str]] = [
    # train: numbers by range and strict digits, then the model × batch against memory
    (f"train {TINY} --seed -1", "--seed': must be 0 or more, not -1"),
    (f"train {TINY} --seed 18446744073709551616", "too large a number"),
    (f"train {TINY} --seed 9223372036854775808", "too large a number"),
    ("train --device cpu --channels 100000", "channels must each be at most 1,024"),
    ("train --device cpu --channels abc", "--channels takes comma-separated integers, not 'abc'"),
    ("train --device cpu --channels 8,16,32,64,128,256,512", "channels must list 1 to 6 stages, not 7"),
    ("train --device cpu --channels 0,16", "channels must be positive"),
    ("train --device cpu --channels ８,16", "comma-separated integers"),
    ("train --device cpu --embed-dim 2000000000", "embed dim must be at most 4,096"),
    ("train --device cpu --embed-dim 7", "t_embed_dim must be even"),
    ("train --device cpu --layers 100000", "layers must be at most 16, not 100000"),
    ("train --device cpu --layers -1", "layers must be 0 or more"),
    ("train --device cpu --preset cpu --batch-size 60000", "needs about 141.9 GiB of memory"),
    ("train --device cpu --batch-size 60001", "batch size must be at most 60,000"),
    (f"train {TINY} --batch-size 1000", "exceeds the 64 training images"),
    ("train --device cpu --steps 0", "steps must be at least 1, not 0"),
    ("train --device cpu --steps 1_0", "'1_0' is not a whole number"),
    ("train --device cpu --steps ５", "'５' is not a whole number"),
    ("train --device cpu --steps 1000000000", "steps must be at most 100,000,000"),
    ("train --device cpu --lr inf", "lr must be a finite number above 0, not inf"),
    ("train --device cpu --lr nan", "lr must be a finite number above 0, not nan"),
    ("train --device cpu --lr 0x10", "'0x10' is not a number"),
    ("train --device cpu --lr 1_0", "'1_0' is not a number"),
    ("train --device cpu --eta 1", "eta (the probability of a null label) must be in [0, 1)"),
    ("train --device cpu --warmup-steps -5", "warm-up steps must be 0 or more"),
    ("train --device cpu --checkpoint-every -1", "--checkpoint-every': must be 0 or more"),
    ("train --device cpu --log-every 0", "--log-every': must be at least 1"),
    ("train --device cpu --nproc 0", "nproc must be at least 1, not 0"),
    ("train --device cpu --nproc 100000", "nproc must be at most 1,024"),
    ("train --device cpu --time-std 0", "time std must be a finite number above 0"),
    ("train --device cpu --beta2 1", "beta2 must be in [0, 1)"),
    (f"train {TINY} --runs {{file}}", "runs folder"),
    (f"train {TINY} --runs /proc/cfg-tui-runs", "the folder /proc is not writable"),
    (f"train {TINY} --run-dir /proc/cfg-tui-run", "--run-dir /proc/cfg-tui-run"),
    (f"train {TINY} --name a/b", "must be a plain folder name"),
    (f"train {TINY} --name x --run-dir y", "give --name or --run-dir, not both"),
    # sample: seeds within int64, samples within memory, strict numbers and digits, outputs
    (f"sample {BASE} --seed -1", "--seed': must be 0 or more, not -1"),
    (f"sample {BASE} --seed 9223372036854775808", "too large a number"),
    (f"sample {BASE} --per-class 99999999999999999999999", "too large a number"),
    (f"sample {BASE} --per-class 100000", "--per-class': must be at most 10,000"),
    (f"sample {BASE} --per-class 10000 --digits 0-9", "sampling 100,000 images at once needs about"),
    (f"sample {BASE} --per-class 0", "--per-class': must be at least 1"),
    (f"sample {BASE} --guidance １", "--guidance: '１' is not a number"),
    (f"sample {BASE} --guidance 1,nan", "not a finite number"),
    (f"sample {BASE} --guidance 1000", "guidance must be at most 100"),
    (f"sample {BASE} --digits 0-", "'0-' is not a digit, a range like 0-9, or null"),
    (f"sample {BASE} --digits ３", "'３' is not a digit"),
    (f"sample {BASE} --digits 5-2", "'5-2' is outside 0-9"),
    (f"sample {BASE.replace('--digits 1', '--digits ,')}", "--digits: '' is not a digit"),
    (f"sample {BASE} --solver sde --noise inf", "--noise': must be a finite number"),
    (f"sample {BASE} --solver sde --noise -1", "--noise': must be 0 or more"),
    (f"sample {BASE.replace('--steps 1', '--steps 0')}", "--steps': must be at least 1"),
    (f"sample {BASE.replace('--steps 1', '--steps 100000')}", "--steps': must be at most 1,000"),
    (f"sample {BASE} --grid shifted --shift nan", "shift must be a number above 0"),
    (f"sample {BASE} --out /proc/x.png", "--out /proc/x.png: the folder /proc is not writable"),
    (f"sample {BASE} --out /sys/x.png", "--out /sys/x.png: the folder /sys is not writable"),
    (f"sample {BASE} --npz /proc/x.npz", "--npz /proc/x.npz: the folder /proc is not writable"),
    (f"sample {BASE} --out /dev/full", "--out /dev/full is not a regular file (a device)"),
    (f"sample {BASE} --out {{fifo}}", "is not a regular file (a FIFO)"),
    (f"sample {BASE} --out {{device_link}}", "is not a regular file (a device)"),
    (f"sample {BASE} --out {{folder}}", "is a folder, not a file name"),
    (f"sample {BASE} --out x.png --npz x.png", "--out and --npz name the same file"),
    (f"sample {BASE} --out missing/x.png", "the folder missing does not exist"),
    (f"sample {BASE} --step -1", "--step': must be 0 or more"),
    (f"sample {BASE} --step 5", "--step needs --checkpoint to name a run folder"),
    (f"sample {BASE} --solver rk4", "unknown solver 'rk4'"),
    # eval and sweep: samples per class by range and memory, seeds, outputs
    ("eval --checkpoint {checkpoint} --per-class 1000000000", "--per-class': must be at most 10,000"),
    ("eval --checkpoint {checkpoint} --per-class 100000000000", "--per-class': must be at most 10,000"),
    ("eval --checkpoint {checkpoint} --per-class 1e9", "'1e9' is not a whole number"),
    ("eval --checkpoint {checkpoint} --per-class 1", "--per-class': must be at least 2"),
    ("eval --checkpoint {checkpoint} --per-class 10000", "sampling 100,000 images at once needs about"),
    ("eval --json /proc/x.json", "No such command '/proc/x.json'"),
    ("eval --checkpoint {checkpoint} --out /proc/x.json", "--out /proc/x.json: the folder /proc"),
    ("eval --samples {fifo} --no-references", "--samples {fifo} is not a regular file (a FIFO)"),
    ("eval --samples {folder} --no-references", "is not a regular file (a folder)"),
    ("eval --checkpoint {checkpoint} --seeds -1", "seed must be 0 or more"),
    ("eval --checkpoint {checkpoint} --seeds 0,x", "--seeds takes comma-separated integers"),
    ("eval --checkpoint {checkpoint} --guidance inf", "not a finite number"),
    ("eval --checkpoint {checkpoint} --steps ０", "'０' is not a whole number"),
    ("eval check --per-class 0", "--per-class': must be at least 2"),
    ("eval check --out /proc/x.json", "--out /proc/x.json: the folder /proc"),
    ("eval train-classifier --epochs 0", "--epochs': must be at least 1"),
    ("eval train-classifier --out /proc/c.safetensors", "the folder /proc is not writable"),
    ("eval train-classifier --feature-layer bogus --out c.safetensors", "feature layer must be one of"),
    ("sweep --checkpoint {checkpoint} --per-class 1000000000", "--per-class': must be at most 10,000"),
    ("sweep --checkpoint {checkpoint} --per-class 100000000000", "--per-class': must be at most 10,000"),
    ("sweep --checkpoint {checkpoint} --per-class 10000", "sampling 100,000 images at once needs about"),
    ("sweep --checkpoint {checkpoint} --out-dir {file}", "is not a folder"),
    ("sweep --checkpoint {checkpoint} --out-dir /proc/x", "--out-dir /proc/x: the folder /proc"),
    ("sweep --checkpoint {checkpoint} --steps 0,2", "steps must be at least 1, not 0"),
    ("sweep --checkpoint {checkpoint} --seeds 18446744073709551616", "18446744073709551616 is too large"),
    ("sweep --checkpoint {checkpoint} --guidance 1,,3", "--guidance: '' is not a number"),
    # bench: batch by range and by memory, strict solver steps
    ("bench data --batch-size 1000000000", "--batch-size': must be at most 60,000"),
    ("bench data --batch-size 0", "--batch-size': must be at least 1"),
    ("bench data --repeats 0", "--repeats': must be at least 1"),
    ("bench data --batch-size 100", "--batch-size 100 exceeds the 64 training images"),
    ("bench train --batch-size 100000", "--batch-size': must be at most 60,000"),
    ("bench train --device cpu --batch-size 50000", "needs about 395.2 GiB of memory"),
    ("bench sample --fast midpoint:２", "--fast wants solver:steps items"),
    ("bench sample --fast midpoint:0", "--fast wants solver:steps items"),
    ("bench sample --fast rk4:2", "--fast wants solver:steps items"),
    ("bench sample --w inf", "--w': must be a finite number"),
    ("bench sample --repeats 1001", "--repeats': must be at most 1,000"),
    ("bench recipe --out /proc/r", "--out /proc/r: the folder /proc is not writable"),
    ("bench recipe --out r --preset huge", "preset must be one of"),
    ("bench recipe --out r --threads 0", "--threads': must be at least 1"),
    ("bench recipe --out r --fractions 0,2", "--fractions must each lie in (0, 1]"),
    ("bench recipe --out r --budget -1", "--budget': must be at least"),
    # path: panels by range, the data's size, strict numbers
    ("path --rows 1000 --cols 1000", "--rows': must be at most 100, not 1000"),
    ("path --rows 0", "--rows': must be at least 1"),
    ("path --cols ２", "'２' is not a whole number"),
    ("path --times 0,2", "--times must lie in [0, 1]"),
    ("path --times nan", "not a finite number"),
    ("path --out /proc/x.png", "--out /proc/x.png: the folder /proc is not writable"),
    ("path --rows 9 --cols 9", "81 images; the data hold 64"),
    ("path --seed -5", "--seed': must be 0 or more"),
    ("path --schedule cubic", "--schedule must be one of"),
    # runs, data, info and the top level
    ("runs --compare a", "--compare needs 2 runs or more"),
    ("runs --json", "--json goes with --compare"),
    ("runs a b", "give one FOLDER, not 2"),
    ("runs /nonexistent-cfg-tui-runs", "is not a folder"),
    ("runs --compare a b --x sideways", "--x"),
    ("runs --compare a b --chart /proc/x.png", "--chart /proc/x.png: the folder /proc"),
    ("data fetch --dataset bogus", "unknown dataset 'bogus'"),
    ("data fetch --data-root /proc/x", "--data-root /proc/x: the folder /proc"),
    ("data bogus", "No such command 'bogus'"),
    ("info --layers 100000", "num_residual_layers out of range: must be at most 16"),
    ("info --channels 100000", "channels must each be at most 1,024"),
    ("info --channels ７", "comma-separated integers"),
    ("info --embed-dim 3", "t_embed_dim must be even"),
    ("info --layers 1_0", "'1_0' is not a whole number"),
    ("info --embed-dim ４0", "'４0' is not a whole number"),
    (f"sample {BASE} --out {'a' * 300}.png", "File name too long"),
    (f"sample {BASE} --npz {'d/' * 2100}x.npz", "File name too long"),
    (f"train {TINY} --runs {'r' * 300}", "File name too long"),
    ("nope", "No such command 'nope'"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths the cases name, outside the folder each case runs in: a small checkpoint, a FIFO, a
    symlink to a device, a plain file and a folder."""
    root = tmp_path_factory.mktemp("places")
    checkpoint = save_checkpoint(root / "small.safetensors", new_model(SMALL, seed=0).eval())
    os.mkfifo(root / "fifo")
    (root / "device-link").symlink_to("/dev/full")
    (root / "file").write_text("not a folder\n")
    (root / "folder").mkdir()
    names = {"checkpoint": checkpoint, "fifo": root / "fifo", "device_link": root / "device-link",
             "file": root / "file", "folder": root / "folder"}  # fmt: skip
    return {name: str(path) for name, path in names.items()}


@pytest.fixture(scope="module")
def warm_data(data_root: Path) -> None:
    """The made-up data read once, so that no case logs its first preprocessing."""
    from core.data import load_split

    for split in ("train", "test"):
        load_split("mnist", split, data_root, log=lambda line: None)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("line, words", CASES, ids=[line for line, _ in CASES])
def test_a_bad_command_line_is_one_line_exit_2_and_writes_nothing(
    line: str,
    words: str,
    places: dict[str, str],
    warm_data: None,
    cli_env: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("core.configs.available_memory", lambda device_type="cpu": FREE)
    before = _listing(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run(shlex.split(line.format(**places)))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_info.value.code == 2, err
    assert len(lines) == 1 and lines[0].startswith("cfg-tui: error: "), err
    assert words.format(**places) in lines[0], lines[0]
    assert _listing(tmp_path) == before


def test_the_table_covers_every_command() -> None:
    commands = {line.split()[0] if line.split()[0] not in ("bench", "eval", "data") else " ".join(
        line.split()[:2]) for line, _ in CASES}  # fmt: skip
    assert len(CASES) >= 60
    for command in ("train", "sample", "sweep", "path", "runs", "info", "data fetch", "bench data",
                    "bench train", "bench sample", "eval check", "eval train-classifier"):  # fmt: skip
        assert command in commands, command
