import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from core.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from core.runs import RunDir
from core.trainer import new_model
from core.unet import UNetConfig
from tests.conftest import TINY_TRAIN
from tui.cli import run

SMALL = UNetConfig(channels=(8, 16), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8)
LAB = ["--preset", "lab"]
"""The lab's sampler on the uniform grid: the default, fast, samples on a grid fitted to the model (a fit
costs seconds), so the tests that are not about presets or grids ask for this one."""


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
    args = [
        "--checkpoint",
        str(checkpoint),
        "--digits",
        "3,null",
        "--guidance",
        "1,3",
        "--per-class",
        "2",
        *LAB,
    ]
    old_umask = os.umask(0o022)
    try:
        code, _, err = invoke(capsys, "sample", *args, "--steps", "4", "--out", str(png), "--npz", str(npz))
    finally:
        os.umask(old_umask)
    assert code == 0, err
    assert {png.stat().st_mode & 0o777, npz.stat().st_mode & 0o777} == {0o644}  # 0666 less umask 022
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
            "--guidance",
            "3",
            *LAB,
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
        *LAB,
    ]
    code, out, _ = invoke(capsys, *args, "--per-class", "1", "--show")
    assert code == 0
    assert "▀" in out and "w = 2" in out
    labels = [line.split("\x1b")[0].strip() for line in out.splitlines()]
    assert "7" in labels and "null" in labels
    code, out, _ = invoke(capsys, *args, "--per-class", "1", "--ascii")
    assert "▀" not in out and "\x1b" not in out and "null" in out


def test_show_draws_sixel_when_asked_and_refuses_an_unknown_mode(
    checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    """--graphics sixel sends a sixel image (DCS ... q ... ST) with the same labels and titles as text;
    a mode that does not exist is one line and exit 2, before anything is sampled."""
    args = ["sample", "--checkpoint", str(checkpoint), "--digits", "7,null", "--guidance", "2",
            "--steps", "2", "--per-class", "1", *LAB, "--show"]  # fmt: skip
    code, out, err = invoke(capsys, *args, "--graphics", "sixel")
    assert code == 0, err
    assert "\x1bP" in out and "q" in out.split("\x1bP", 1)[1] and "▀" not in out
    assert "w = 2" in out and "null" in out
    code, out, err = invoke(capsys, *args, "--graphics", "vt340")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "halfblock" in err and not out


def test_a_terminal_sees_the_progress_and_the_same_art(
    checkpoint: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal, stderr shows the solver steps of every panel until they are all done; the art
    on stdout is the same as without a terminal, which gets no bar."""
    import io

    from rich.console import Console

    from tui.commands import sample as sample_command

    args = ["sample", "--checkpoint", str(checkpoint), "--digits", "7,null", "--guidance", "1,2",
            "--per-class", "1", "--steps", "3", *LAB, "--show"]  # fmt: skip
    code, plain, err = invoke(capsys, *args)  # stderr is captured: not a terminal
    assert code == 0 and "steps" not in err.replace("images per panel", "")
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, color_system=None, width=100)
    monkeypatch.setattr(sample_command, "_progress_console", lambda: console)
    code, out, _ = invoke(capsys, *args)
    assert code == 0 and out == plain
    shown = terminal.getvalue()
    assert "w = 2 (2/2)" in shown and "6/6 steps" in shown and "100%" in shown


def test_a_run_directory_is_a_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture, cli_env: dict
) -> None:
    run_dir = tmp_path / "run"
    assert invoke(capsys, "train", *TINY_TRAIN, "--steps", "3", "--run-dir", str(run_dir))[0] == 0
    npz = tmp_path / "x.npz"
    code, _, err = invoke(
        capsys, "sample", "--checkpoint", str(run_dir), *LAB, "--steps", "2", "--npz", str(npz)
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
    (["--checkpoint", "{mismatched}"], "parameters but the file stores 10,852 numbers; refusing to build it"),
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
    code, _, err = invoke(capsys, "sample", *LAB, *steps, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("cfg-tui: error:"), err
    assert message in lines[0]


BAD_TRAINING = [
    (["--lr", "nan"], "lr must be a finite number above 0, not nan"),
    (["--eta", "1.5"], "eta (the probability of a null label) must be in [0, 1), not 1.5"),
    (["--preset", "huge"], "preset must be auto, seed, cpu, gpu, not 'huge'"),
    (["--channels", "8,x"], "comma-separated integers"),
    (["--schedule", "cubic"], "schedule must be one of linear, cosine"),
    (["--batch-size", "1000"], "exceeds the 64 training images"),
    (["--steps", "0"], "steps must be at least 1, not 0"),
    (["--nproc", "2", "--batch-size", "1000"], "exceeds the 64 training images"),
    (["--nproc", "2", "--batch-size", "1"], "less than one image per process"),
    (["--nproc", "0"], "nproc must be at least 1, not 0"),
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
        capsys, "sample", "--checkpoint", str(checkpoint), *LAB, "--steps", "1", "--device", "cuda"
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
    # The default sampler, fast, on its grid fitted to the bundled model (stored beside it).
    code, _, err = invoke(
        capsys,
        "sample",
        "--digits",
        "1",
        "--per-class",
        "2",
        "--guidance",
        "3",
        "--steps",
        "3",
        "--npz",
        str(npz),
    )
    assert code == 0, err
    assert np.load(npz)["images"].shape == (2, 1, 32, 32)


# --- samplers: presets, grids, guidance methods, snapshots --------------------------------------


def _sample(
    capsys: pytest.CaptureFixture, npz: Path, *args: str, guidance: str = "3", preset: str | None = "lab"
) -> tuple[np.ndarray, str]:
    """The images ``cfg-tui sample ARGS --npz NPZ`` writes (one digit and null, two each, at w = 3;
    the lab's sampler unless ARGS or ``preset`` say otherwise, None: the default) and its stderr."""
    npz.unlink(missing_ok=True)
    base = ["--digits", "1,null", "--per-class", "2", "--guidance", guidance, "--npz", str(npz)]
    base += ["--preset", preset] if preset else []
    code, _, err = invoke(capsys, "sample", *base, *args)
    assert code == 0, err
    return np.load(npz)["images"], err


def _images(
    capsys: pytest.CaptureFixture, npz: Path, *args: str, guidance: str = "3", preset: str | None = "lab"
) -> np.ndarray:
    return _sample(capsys, npz, *args, guidance=guidance, preset=preset)[0]


def test_interval_guidance_is_cfg_over_its_whole_interval_only(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    def images(*guide: str) -> np.ndarray:
        return _images(capsys, tmp_path / "s.npz", "--checkpoint", str(checkpoint), "--steps", "4", *guide)

    cfg = images("--guide", "cfg")
    assert np.array_equal(cfg, images())  # cfg is the default
    assert not np.array_equal(cfg, images("--guide", "interval:start=0.3,end=0.7"))
    assert np.array_equal(cfg, images("--guide", "interval:start=0,end=1"))
    assert not np.array_equal(cfg, images("--guide", "apg"))  # eta 0 drops the parallel part
    # eta 1, no rescale, no momentum: cfg, up to rounding (Δ⊥ + Δ∥ is Δ)
    np.testing.assert_allclose(images("--guide", "apg:eta=1"), cfg, atol=1e-5)


def test_presets_are_their_samplers_and_options_replace_their_settings(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    from core.grids import grid_key, grid_store_path, save_grid
    from core.sampling import FIT_GUIDANCE, SAMPLERS

    # Stored grids, so that no grid is fitted here (fitting has its own test, and costs 20 s).
    preset = SAMPLERS["fast"]
    for steps in (preset.steps, 2):
        key = grid_key(preset.solver, steps, preset.guide.describe(), FIT_GUIDANCE)
        save_grid(
            grid_store_path(checkpoint), key, [0.0, *((i / steps) ** 0.8 for i in range(1, steps)), 1.0]
        )

    def images(*args: str, preset: str | None = "lab") -> np.ndarray:
        return _images(capsys, tmp_path / "s.npz", "--checkpoint", str(checkpoint), *args, preset=preset)

    def explicit(preset: str) -> list[str]:
        s = SAMPLERS[preset]
        return ["--solver", s.solver, "--steps", str(s.steps), "--grid", s.grid, "--shift", f"{s.shift:g}",
                "--guide", s.guide.describe()]  # fmt: skip

    lab = images("--preset", "lab")
    assert np.array_equal(lab, images(*explicit("lab")))
    assert explicit("lab")[:4] == ["--solver", "euler", "--steps", "99"]
    fast = images("--preset", "fast")
    assert np.array_equal(fast, images(preset=None))  # fast is the default
    assert np.array_equal(fast, images(*explicit("fast")))
    assert not np.array_equal(fast, lab)
    # An option replaces one setting of the preset and keeps the others.
    solver = SAMPLERS["fast"].solver
    assert np.array_equal(
        images("--preset", "fast", "--steps", "2"),
        images("--solver", solver, "--steps", "2", "--grid", SAMPLERS["fast"].grid),
    )
    assert not np.array_equal(images("--preset", "fast", "--steps", "2"), images("--steps", "2"))


def test_the_shifted_grid_moves_the_steps(tmp_path: Path, checkpoint: Path, capsys) -> None:
    def images(*args: str) -> np.ndarray:
        return _images(capsys, tmp_path / "s.npz", "--checkpoint", str(checkpoint), "--steps", "3", *args)

    uniform = images("--grid", "uniform")
    shifted = images("--grid", "shifted")
    assert not np.array_equal(uniform, shifted)
    assert np.array_equal(shifted, images("--grid", "shifted", "--shift", "3"))  # the default shift
    assert not np.array_equal(shifted, images("--grid", "shifted", "--shift", "2"))
    assert np.array_equal(uniform, images("--grid", "shifted", "--shift", "1"))  # s = 1: no shift


def test_a_fitted_grid_is_fitted_once_and_stored_beside_the_weights(
    tmp_path: Path, tiny_config: UNetConfig, capsys: pytest.CaptureFixture
) -> None:
    from core.grids import grid_key, load_grids, uniform_grid
    from core.sampling import FIT_GUIDANCE, Sampler
    from core.sampling import sample as library_sample

    model = new_model(tiny_config, seed=0).eval()  # 16 px, two classes: a fit takes a second
    weights = save_checkpoint(tmp_path / "tiny.safetensors", model)
    store = tmp_path / "tiny.grids.json"
    npz = tmp_path / "s.npz"
    args = ["--checkpoint", str(weights), "--digits", "0,1", "--per-class", "2", "--guidance", "3", *LAB]

    def run_fitted(*extra: str) -> tuple[np.ndarray, str]:
        npz.unlink(missing_ok=True)
        code, _, err = invoke(capsys, "sample", *args, "--grid", "fitted", "--npz", str(npz), *extra)
        assert code == 0, err
        return np.load(npz)["images"], err

    assert not store.exists()
    first, err = run_fitted("--steps", "2")
    assert "fitting a time grid for euler × 2" in err and f"stored in {store}" in err
    key = grid_key("euler", 2, "cfg", FIT_GUIDANCE)
    grids = load_grids(store)
    assert list(grids) == [key] and len(grids[key]) == 3
    stamp, content = store.stat().st_mtime_ns, store.read_bytes()

    second, err = run_fitted("--steps", "2")
    assert "fitting" not in err
    assert store.stat().st_mtime_ns == stamp and store.read_bytes() == content
    assert np.array_equal(second, run_fitted("--steps", "2")[0])
    # The first run samples on the grid before the store rounds it to 6 decimals: within rounding.
    np.testing.assert_allclose(first, second, atol=1e-5)
    # The images are those of the stored grid (with the weights as the command loads them).
    model = load_checkpoint(weights)[0]
    labels = torch.tensor([0, 0, 1, 1])
    expected = library_sample(model, labels, 3.0, Sampler(steps=2), torch.tensor(grids[key]), seed=0)
    assert np.array_equal(second, expected.clamp(-1, 1).numpy())
    if grids[key] != uniform_grid(2).tolist():  # (it is, for this model)
        uniform = library_sample(model, labels, 3.0, Sampler(steps=2), uniform_grid(2), seed=0)
        assert not np.array_equal(second, uniform.clamp(-1, 1).numpy())

    # Another solver gets its own grid; the first one is kept.
    run_fitted("--solver", "midpoint", "--steps", "2")
    grids_after = load_grids(store)
    assert set(grids_after) == {key, grid_key("midpoint", 2, "cfg", FIT_GUIDANCE)}
    assert grids_after[key] == grids[key]


def test_autoguidance_by_a_named_checkpoint(tmp_path: Path, checkpoint: Path, capsys) -> None:
    weaker = save_checkpoint(tmp_path / "weaker.safetensors", new_model(SMALL, seed=1).eval())

    def images(*args: str) -> np.ndarray:
        return _images(capsys, tmp_path / "s.npz", "--checkpoint", str(checkpoint), "--steps", "3", *args)

    cfg = images()
    auto, err = _sample(capsys, tmp_path / "s.npz", "--checkpoint", str(checkpoint), "--steps", "3",
                        "--guide", f"auto:checkpoint={weaker}")  # fmt: skip
    assert f"auto:checkpoint={weaker}" in err
    assert not np.array_equal(auto, cfg)
    assert np.array_equal(auto, images("--guide", f"auto:checkpoint={weaker}"))
    # Guided by itself, autoguidance is the conditional field: w = 3 gives w = 1's images.
    itself = images("--guide", f"auto:checkpoint={checkpoint}")
    plain = _images(capsys, tmp_path / "s.npz", "--checkpoint", str(checkpoint), "--steps", "3", guidance="1")
    assert np.array_equal(itself, plain)


@pytest.fixture
def snapshot_run(tmp_path: Path, cli_env: dict, capsys: pytest.CaptureFixture) -> Path:
    """A tiny run of 8 steps with weight snapshots at steps 2, 4, 6 and 8."""
    run_dir = tmp_path / "run"
    args = ["--steps", "8", "--checkpoint-every", "2", "--preview-every", "0", "--run-dir", str(run_dir)]
    code, _, err = invoke(capsys, "train", *TINY_TRAIN, *args)
    assert code == 0, err
    assert [s for s, _ in RunDir(run_dir).snapshots()] == [2, 4, 6, 8]
    return run_dir


def test_step_samples_a_snapshot_of_the_run(
    tmp_path: Path, snapshot_run: Path, capsys: pytest.CaptureFixture
) -> None:
    npz = tmp_path / "s.npz"
    snapshot = snapshot_run / "checkpoints" / "step-000004.safetensors"
    at_step = _images(capsys, npz, "--checkpoint", str(snapshot_run), "--step", "4", "--steps", "3")
    assert np.array_equal(at_step, _images(capsys, npz, "--checkpoint", str(snapshot), "--steps", "3"))
    assert not np.array_equal(
        at_step, _images(capsys, npz, "--checkpoint", str(snapshot_run), "--steps", "3")
    )

    npz.unlink()
    for args, message in [
        (["--checkpoint", str(snapshot_run), "--step", "5"],
         "has no snapshot at step 5; its snapshots are at steps 2, 4, 6, 8"),
        (["--checkpoint", str(snapshot), "--step", "4"], "--step needs --checkpoint to name a run folder"),
        (["--step", "4"], "--step needs --checkpoint to name a run folder"),
    ]:  # fmt: skip
        code, _, err = invoke(capsys, "sample", *args, "--steps", "2", "--npz", str(npz))
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], (args, err)
        assert not npz.exists()


def test_auto_guides_a_run_with_its_snapshot_at_a_quarter_of_the_step(
    tmp_path: Path, snapshot_run: Path, capsys: pytest.CaptureFixture
) -> None:
    npz = tmp_path / "s.npz"
    snapshots = snapshot_run / "checkpoints"
    run = ["--checkpoint", str(snapshot_run), "--steps", "3"]
    default, err = _sample(capsys, npz, *run, "--guide", "auto")
    assert f"auto:checkpoint={snapshots / 'step-000002.safetensors'}" in err
    named = _images(capsys, npz, *run, "--guide", f"auto:checkpoint={snapshots / 'step-000002.safetensors'}")
    assert np.array_equal(default, named)  # the last snapshot at or before step 8 / 4 = 2
    later = _images(capsys, npz, *run, "--guide", f"auto:checkpoint={snapshots / 'step-000006.safetensors'}")
    assert not np.array_equal(default, later)


BAD_SAMPLERS = [
    (["--guide", "foo"], "--guide: unknown guidance 'foo'; choose from cfg, interval, zero-star, apg, auto"),
    (["--guide", "apg:eta=x"], "--guide: apg's eta must be a number, not 'x'"),
    (["--guide", "interval:start=0.9,end=0.1"], "--guide: interval needs 0 <= start < end <= 1"),
    (["--guide", "apg:momentum=1"], "--guide: apg's momentum must lie in (-1, 1), not 1"),
    (["--guide", "zero-star:zero_steps=-1"], "--guide: zero-star's zero_steps must be 0 or more, not -1"),
    (["--guide", "interval:start=0.3,start=0.4"], "--guide: interval's start is given twice"),
    (["--guide", "cfg:w=2"], "--guide: cfg takes key=value parameters (none), not 'w=2'"),
    (["--guide", "zero-star:zero_steps=1.5"], "zero-star's zero_steps must be an integer, not '1.5'"),
    (["--grid", "wavy"], "--grid: unknown time grid 'wavy'; choose from uniform, shifted, fitted"),
    (["--shift", "0"], "shift must be a number above 0, not 0"),
    (["--shift", "-2"], "shift must be a number above 0, not -2"),
    (["--preset", "turbo"], "unknown sampler preset 'turbo'; choose from lab, fast"),
    (["--grid", "fitted", "--guide", "zero-star"], "a fitted grid is fitted without zero-init"),
    (["--solver", "rk4"], "--solver: unknown solver 'rk4'"),
]


@pytest.mark.parametrize("args, message", BAD_SAMPLERS, ids=[" ".join(a) for a, _ in BAD_SAMPLERS])
def test_bad_sampler_options_are_one_line_and_write_nothing(
    args: list[str], message: str, tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    npz, png = tmp_path / "s.npz", tmp_path / "s.png"
    before = sorted(tmp_path.iterdir())
    outputs = ["--npz", str(npz), "--out", str(png)]
    code, out, err = invoke(
        capsys, "sample", "--checkpoint", str(checkpoint), "--steps", "2", *outputs, *args
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("cfg-tui: error:"), err
    assert message in lines[0] and out == ""
    assert sorted(tmp_path.iterdir()) == before  # no samples, no grid store


def test_a_damaged_grid_store_is_one_line_and_left_alone(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    store = checkpoint.with_suffix(".grids.json")
    store.write_text("{not json")
    out = tmp_path / "s.npz"
    code, _, err = invoke(
        capsys,
        "sample",
        "--checkpoint",
        str(checkpoint),
        "--grid",
        "fitted",
        "--steps",
        "2",
        "--npz",
        str(out),
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert store.name in err and "not JSON" in err
    assert store.read_text() == "{not json" and not out.exists()  # not refitted over, nothing written


def test_the_png_records_the_command_that_makes_it_again(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    import shlex

    from PIL import Image

    png, first, again = tmp_path / "grid.png", tmp_path / "first.npz", tmp_path / "again.npz"
    made = ["sample", "--checkpoint", str(checkpoint), "--digits", "1,null", "--per-class", "2",
            "--guidance", "1,3", "--steps", "3", "--grid", "uniform", "--seed", "4",
            "--guide", "interval:start=0.3,end=0.9",
            "--out", str(png), "--npz", str(first)]  # fmt: skip
    code, _, err = invoke(capsys, *made)
    assert code == 0, err
    text = Image.open(png).text
    assert text["Software"].startswith("cfg-tui ")
    recipe = {"solver": "midpoint", "steps": "3", "seed": "4", "guidance scales": "1,3", "digits": "1,null",
              "per class": "2", "guidance method": "interval:start=0.3,end=0.9"}  # fmt: skip
    assert {key: text.get(key) for key in recipe} == recipe
    command = shlex.split(text["Comment"])
    assert command[:2] == ["cfg-tui", "sample"] and "--guide" in command
    code, _, err = invoke(capsys, *command[1:], "--npz", str(again))
    assert code == 0, err
    assert np.array_equal(np.load(first)["images"], np.load(again)["images"])
