import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from core.checkpoint import read_checkpoint, save_checkpoint
from core.runs import RunDir
from core.trainer import new_model
from core.unet import UNetConfig
from tests.conftest import TINY_TRAIN
from tui.cli import run

SMALL = UNetConfig(channels=(8, 16), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8)


def invoke(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run ``cfg-tui ARGS`` in this process; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        run(list(args))
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "small.safetensors", new_model(SMALL, seed=0).eval())


def test_png_and_npz_outputs(tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    png, npz = tmp_path / "grid.png", tmp_path / "samples.npz"
    args = ["--checkpoint", str(checkpoint), "--digits", "3,null", "--guidance", "1,3", "--per-class", "2"]
    code, _, err = invoke(capsys, "sample", *args, "--steps", "4", "--out", str(png), "--npz", str(npz))
    assert code == 0, err
    assert Image.open(png).width > Image.open(png).height > 0
    saved = np.load(npz)
    assert saved["images"].shape == (8, 1, 32, 32) and saved["images"].dtype == np.float32
    assert saved["images"].min() >= -1 and saved["images"].max() <= 1
    assert saved["labels"].dtype == np.int64 and saved["labels"].tolist() == [3, 3, 10, 10] * 2
    assert saved["guidance"].tolist() == [1.0] * 4 + [3.0] * 4


def test_same_seed_same_samples_and_solvers_differ(tmp_path: Path, checkpoint: Path, capsys) -> None:
    def images(*extra: str) -> np.ndarray:
        path = tmp_path / "s.npz"
        args = [
            "sample",
            "--checkpoint",
            str(checkpoint),
            "--digits",
            "1",
            "--per-class",
            "2",
            "--steps",
            "3",
        ]
        assert invoke(capsys, *args, "--npz", str(path), *extra)[0] == 0
        return np.load(path)["images"]

    assert np.array_equal(images("--seed", "4"), images("--seed", "4"))
    assert not np.array_equal(images("--seed", "4"), images("--seed", "5"))
    assert not np.array_equal(images("--solver", "heun"), images("--solver", "euler"))


def test_show_prints_labelled_half_blocks(checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    args = [
        "sample",
        "--checkpoint",
        str(checkpoint),
        "--digits",
        "7,null",
        "--guidance",
        "2",
        "--steps",
        "2",
    ]
    code, out, _ = invoke(capsys, *args, "--per-class", "1", "--show")
    assert code == 0
    assert "▀" in out and "w = 2" in out
    labels = [line.split("\x1b")[0].strip() for line in out.splitlines()]
    assert "7" in labels and "null" in labels
    code, out, _ = invoke(capsys, *args, "--per-class", "1", "--ascii")
    assert "▀" not in out and "\x1b" not in out and "null" in out


def test_a_run_directory_is_a_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture, cli_env: dict
) -> None:
    run_dir = tmp_path / "run"
    assert invoke(capsys, "train", *TINY_TRAIN, "--steps", "3", "--run-dir", str(run_dir))[0] == 0
    code, _, err = invoke(
        capsys, "sample", "--checkpoint", str(run_dir), "--steps", "2", "--npz", str(tmp_path / "x.npz")
    )
    assert code == 0, err


def _tree_hash(folder: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def bad_files(tmp_path: Path, checkpoint: Path) -> dict[str, Path]:
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    _, tensors, meta = read_checkpoint(checkpoint)
    mismatched = tmp_path / "mismatched.safetensors"
    save_file(tensors, str(mismatched), metadata={**meta, "unet_config": json.dumps(UNetConfig().to_dict())})
    not_a_run = tmp_path / "folder"
    not_a_run.mkdir()
    return {"corrupt": corrupt, "mismatched": mismatched, "folder": not_a_run, "dir": tmp_path}


BAD_SAMPLES = [
    (["--digits", "11"], "outside 0-9"),
    (["--digits", "x"], "not a digit"),
    (["--digits", "5-2"], "outside 0-9"),
    (["--guidance", "nan"], "not a finite number"),
    (["--guidance", "1,inf"], "not a finite number"),
    (["--guidance", "abc"], "'abc' is not a number"),
    (["--steps", "0"], "--steps"),
    (["--steps", "-3"], "--steps"),
    (["--steps", "nan"], "--steps"),
    (["--per-class", "0"], "--per-class"),
    (["--solver", "rk4"], "--solver: unknown solver 'rk4'"),
    (["--checkpoint", "{dir}/missing.safetensors"], "checkpoint not found"),
    (["--checkpoint", "{corrupt}"], "not a readable safetensors file"),
    (["--checkpoint", "{mismatched}"], "tensors do not match the configuration"),
    (["--checkpoint", "{folder}"], "is not a run"),
    (["--out", "{dir}/no/such/folder/grid.png"], "does not exist"),
    (["--out", "{dir}"], "is a folder"),
    (["--npz", "{dir}/no/such/folder/s.npz"], "does not exist"),
]


@pytest.mark.parametrize("args, message", BAD_SAMPLES, ids=[" ".join(a) for a, _ in BAD_SAMPLES])
def test_bad_sample_input_is_one_line_and_exit_2(
    args: list[str], message: str, checkpoint: Path, bad_files: dict, capsys: pytest.CaptureFixture
) -> None:
    args = [a.format(**bad_files) for a in args]
    if "--checkpoint" not in args:
        args += ["--checkpoint", str(checkpoint)]
    steps = [] if "--steps" in args else ["--steps", "2"]
    code, _, err = invoke(capsys, "sample", *steps, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("cfg-tui: error:"), err
    assert message in lines[0]


BAD_TRAINING = [
    (["--lr", "nan"], "learning rate must be a finite number above 0, not nan"),
    (["--eta", "1.5"], "eta (the probability of a null label) must be in [0, 1), not 1.5"),
    (["--preset", "huge"], "preset must be auto, seed, cpu, gpu, not 'huge'"),
    (["--channels", "8,x"], "comma-separated integers"),
    (["--schedule", "cubic"], "schedule must be one of linear, cosine"),
    (["--batch-size", "1000"], "exceeds the 64 training images"),
    (["--steps", "0"], "steps must be at least 1, not 0"),
    (["--nproc", "2", "--batch-size", "1000"], "exceeds the 64 training images"),
    (["--nproc", "2", "--batch-size", "1"], "less than one image per process"),
    (["--nproc", "0"], "processes must be at least 1, not 0"),
]


@pytest.mark.parametrize("args, message", BAD_TRAINING, ids=[" ".join(a) for a, _ in BAD_TRAINING])
def test_bad_training_input_makes_no_run(args, message, tmp_path: Path, cli_env: dict, capsys) -> None:
    runs = tmp_path / "runs"
    code, _, err = invoke(capsys, "train", *TINY_TRAIN, "--runs", str(runs), *args)
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("cfg-tui: error:") and message in lines[-1], err
    assert not [line for line in lines if "Traceback" in line]
    assert not runs.exists() or not any(runs.iterdir())


def test_bad_resumes_change_no_file(tmp_path: Path, cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    finished = tmp_path / "done"
    assert invoke(capsys, "train", *TINY_TRAIN, "--steps", "4", "--run-dir", str(finished))[0] == 0
    before = _tree_hash(finished)
    cases = [
        (["--resume", str(finished)], "has already trained 4 of 4 steps"),
        (["--resume", str(finished), "--lr", "0.1"], "drop --lr"),
        (["--resume", str(tmp_path / "nowhere")], "is not a folder"),
        (["--resume", str(tmp_path)], "is not a run"),
        (["--resume", str(finished), "--nproc", "2"], "has already trained 4 of 4 steps"),
    ]
    for args, message in cases:
        code, _, err = invoke(capsys, "train", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, (args, err)
    assert _tree_hash(finished) == before
    assert RunDir(finished).status().state == "finished"


def test_other_commands_refuse_bad_input(
    tmp_path: Path, cli_env: dict, capsys: pytest.CaptureFixture
) -> None:
    for args, message in [
        (["runs", str(tmp_path / "nowhere")], "is not a folder"),
        (["path", "--times", "2"], "must lie in [0, 1]"),
        (["path", "--out", str(tmp_path / "no" / "p.png")], "does not exist"),
    ]:
        code, _, err = invoke(capsys, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, (args, err)


def test_path_figure(tmp_path: Path, cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "path.png"
    code, _, err = invoke(
        capsys, "path", "--times", "0,0.5,1", "--rows", "2", "--cols", "2", "--out", str(out)
    )
    assert code == 0, err
    grey = np.asarray(Image.open(out).convert("L"))
    assert grey.shape[1] > 3 * 2 * 32  # three panels of two columns


def test_cuda_request_without_gpu_is_refused(capsys: pytest.CaptureFixture, checkpoint: Path) -> None:
    expected = 0 if torch.cuda.is_available() else 2
    code, _, err = invoke(
        capsys, "sample", "--checkpoint", str(checkpoint), "--steps", "1", "--device", "cuda"
    )
    assert code == expected, err


def test_the_bundled_model_is_the_default(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    from core.assets import BUNDLED_MODEL
    from core.checkpoint import load_checkpoint
    from core.presets import PRESETS

    model, _ = load_checkpoint(BUNDLED_MODEL)
    assert model.config == PRESETS["cpu"].model
    assert BUNDLED_MODEL.stat().st_size < 5 * 2**20
    npz = tmp_path / "bundled.npz"
    code, _, err = invoke(
        capsys, "sample", "--digits", "1", "--per-class", "2", "--steps", "3", "--npz", str(npz)
    )
    assert code == 0, err
    assert np.load(npz)["images"].shape == (2, 1, 32, 32)
