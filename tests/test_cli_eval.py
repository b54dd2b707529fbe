import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.checkpoint import save_checkpoint
from core.data import load_split
from core.metrics import save_classifier, train_classifier
from core.trainer import new_model
from core.unet import UNetConfig
from tests.test_cli_sample import invoke

SMALL = UNetConfig(channels=(8, 16), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8)


@pytest.fixture
def files(tmp_path: Path, data_root: Path, cli_env: dict) -> dict[str, str]:
    """A tiny U-Net and a classifier trained for one epoch on the made-up data."""
    model = save_checkpoint(tmp_path / "small.safetensors", new_model(SMALL, seed=0))
    train, _ = load_split("mnist", "train", data_root, log=lambda s: None)
    classifier = save_classifier(tmp_path / "clf.safetensors", train_classifier(train, epochs=1), {})
    return {"model": str(model), "classifier": str(classifier), "dir": str(tmp_path)}


def test_eval_reports_rows_with_references(files: dict, capsys: pytest.CaptureFixture) -> None:
    out = Path(files["dir"]) / "eval.json"
    code, stdout, err = invoke(
        capsys, "eval", "--checkpoint", files["model"], "--classifier", files["classifier"],
        "--guidance", "1,3", "--per-class", "3", "--steps", "2", "--seeds", "0,1", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads(out.read_text())
    names = ["real training images", "noise", *(f"w={w} euler×2" for _ in (0, 1) for w in (1, 3))]
    assert [r["name"] for r in rows] == names and [r["seed"] for r in rows[2:]] == [0, 0, 1, 1]
    assert [r["nfe"] for r in rows] == [0, 0, 2, 4, 2, 4]
    assert all(r["n"] == 30 for r in rows) and rows[2]["frechet"] != rows[4]["frechet"]  # other noise
    for row in rows:
        spreads = [row[f"{m}_spread"] for m in ("frechet", "kid", "precision", "recall")]
        assert all(s is not None and s >= 0 for s in spreads) and 0 <= row["precision"] <= 1
    for row in rows:
        assert (
            0 <= row["accuracy"] <= 1
            and row["frechet"] >= 0
            and set(row["frechet_per_class"]) <= set("0123456789")
        )
    assert "real training images" in stdout and "frechet" in stdout and "±" in stdout


def test_eval_scores_a_samples_file_as_json_on_stdout(files: dict, capsys: pytest.CaptureFixture) -> None:
    npz = Path(files["dir"]) / "s.npz"
    args = ["sample", "--checkpoint", files["model"], "--digits", "0-9,null", "--per-class", "3"]
    args += ["--preset", "lab"]  # the uniform grid: the default's is fitted to the model first (seconds)
    assert invoke(capsys, *args, "--steps", "2", "--guidance", "1,3", "--npz", str(npz))[0] == 0
    code, stdout, err = invoke(
        capsys,
        "eval",
        "--samples",
        str(npz),
        "--classifier",
        files["classifier"],
        "--no-references",
        "--json",
    )
    assert code == 0, err
    (row,) = json.loads(stdout)  # nothing but JSON on stdout
    assert row["name"] == "s.npz" and row["n"] == 2 * 10 * 3  # two panels of ten digits, null left out
    assert "6 null samples left out" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"not a zip", "is not a readable .npz file"),
        ({"images": np.zeros((4, 1, 32, 32), np.float32)}, "has no labels array"),
        (
            {"images": np.zeros((4, 32, 32), np.float32), "labels": np.zeros(4, np.int64)},
            "images must be float (N, 1, H, W)",
        ),
        ({"images": np.full((4, 1, 32, 32), 3, np.float32), "labels": np.zeros(4, np.int64)}, "in [-1, 1]"),
        (
            {"images": np.zeros((4, 1, 32, 32), np.float32), "labels": np.zeros(3, np.int64)},
            "labels must be 4 integers",
        ),
        (
            {"images": np.zeros((4, 1, 32, 32), np.float32), "labels": np.array([{}] * 4)},
            "is not a readable .npz",
        ),
    ],
)
def test_a_bad_samples_file_is_one_line_and_exit_2(
    content: object, message: str, files: dict, capsys: pytest.CaptureFixture
) -> None:
    path = Path(files["dir"]) / "bad.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        with path.open("wb") as f:
            np.savez(f, **content)
    code, _, err = invoke(capsys, "eval", "--samples", str(path), "--classifier", files["classifier"])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err


def test_eval_check_prints_every_damage_and_a_verdict_per_measure(
    tmp_path: Path, bars_data_root: Path, capsys: pytest.CaptureFixture
) -> None:
    train, _ = load_split("mnist", "train", bars_data_root, log=lambda s: None)
    classifier = save_classifier(tmp_path / "clf.safetensors", train_classifier(train, epochs=1), {})
    two_classes = dataclasses.replace(SMALL, num_classes=2)  # as the bars
    model = save_checkpoint(tmp_path / "small.safetensors", new_model(two_classes, seed=0))
    common = ["--classifier", str(classifier), "--data-root", str(bars_data_root), "--per-class", "10"]
    code, stdout, err = invoke(capsys, "eval", "check", *common, "--checkpoint", str(model), "--json")
    assert code == 0, err
    rows = json.loads(stdout)
    damages = ["blur σ px 0.3", "blur σ px 0.6", "blur σ px 1", "noise σ 0.02", "noise σ 0.05", "noise σ 0.1",
               "quantise levels 4", "shift px 1"]  # fmt: skip
    generated = [f"w=3 euler×{n}" for n in (2, 4, 8, 99)]
    assert [r["name"] for r in rows] == ["real train", *damages, *generated]
    assert all(r["n"] == 20 for r in rows)  # the bars have two classes
    code, stdout, err = invoke(capsys, "eval", "check", *common, "--no-generated", "--feature-layer", "pool")
    assert code == 0, err
    assert "pool features" in stdout and "does each measure see each damage?" in stdout
    for measure in ("frechet", "kid", "precision", "recall"):
        assert any(line.split("│")[1].strip() == measure for line in stdout.splitlines() if "│" in line)


def test_sweep_writes_json_csv_and_charts(files: dict, capsys: pytest.CaptureFixture) -> None:
    out = Path(files["dir"]) / "sweep"
    code, _, err = invoke(
        capsys, "sweep", "--checkpoint", files["model"], "--classifier", files["classifier"],
        "--guidance", "0,3", "--solvers", "euler,heun", "--steps", "1,2", "--per-class", "2",
        "--out-dir", str(out),
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads((out / "sweep.json").read_text())
    assert len(rows) == 2 * 2 * 2
    heun = {(r["guidance"], r["steps"]): r["nfe"] for r in rows if r["solver"] == "heun"}
    assert heun == {(0.0, 1): 2, (0.0, 2): 4, (3.0, 1): 4, (3.0, 2): 8}
    with (out / "sweep.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 8
    for name in ("accuracy-vs-guidance.png", "frechet-vs-guidance.png", "distance-vs-nfe-w3.png"):
        assert Image.open(out / name).size == (640, 400)


def test_eval_bad_input_exits_2(files: dict, capsys: pytest.CaptureFixture) -> None:
    base = ["--checkpoint", files["model"], "--per-class", "2", "--steps", "1"]
    for args, message in [
        (["eval", *base, "--solver", "rk4"], "--solver: unknown solver 'rk4'"),
        (["eval", *base, "--classifier", files["model"]], "is not a cfg-tui classifier"),
        (["eval", *base, "--classifier", files["classifier"], "--guidance", "x"], "is not a number"),
        (["sweep", *base[:2], "--solvers", "rk4"], "--solvers: unknown solver 'rk4'"),
        (["eval", *base, "--guide", "cfg", "--guide", "foo"], "--guide: unknown guidance 'foo'"),
        (["eval", *base, "--guide", "apg:momentum=1"], "--guide: apg's momentum must lie in (-1, 1)"),
        (["eval", *base, "--grid", "wavy"], "--grid: unknown time grid 'wavy'"),
        (["eval", *base, "--preset", "turbo"], "unknown sampler preset 'turbo'"),
        (["eval", *base, "--shift", "0"], "shift must be a number above 0, not 0"),
        (["sweep", *base[:2], "--grids", "uniform,wavy"], "--grids: unknown time grid 'wavy'"),
        (["sweep", *base[:2], "--guide", "interval:start=0.9,end=0.1"], "--guide: interval needs 0 <= start"),
        (["sweep", *base[:2], "--grids", "fitted", "--guide", "zero-star"], "fitted without zero-init"),
    ]:
        code, _, err = invoke(capsys, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, (args, err)


@pytest.fixture
def pool_files(tmp_path: Path, data_root: Path, cli_env: dict) -> dict[str, str]:
    """As ``files``, with a classifier that measures in its 128 pool features (the 448 combined ones
    make every Fréchet distance 30x slower); for tests of the samplers rather than the yardstick."""
    model = save_checkpoint(tmp_path / "small.safetensors", new_model(SMALL, seed=0))
    train, _ = load_split("mnist", "train", data_root, log=lambda s: None)
    classifier = train_classifier(train, epochs=1, feature_layer="pool")
    return {
        "model": str(model),
        "classifier": str(save_classifier(tmp_path / "clf.safetensors", classifier, {})),
        "dir": str(tmp_path),
    }


def test_eval_rows_per_guidance_method_with_counted_nfe(pool_files: dict, capsys) -> None:
    from core.sampling import Sampler

    code, stdout, err = invoke(
        capsys, "eval", "--checkpoint", pool_files["model"], "--classifier", pool_files["classifier"],
        "--guide", "cfg", "--guide", "interval:start=0.2,end=0.8", "--guidance", "1,3", "--steps", "4",
        "--per-class", "2", "--no-references", "--json",
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads(stdout)
    cells = [(r["guidance"], r["guide"]) for r in rows]
    # interval:start=0.2,end=0.8 is interval's default, which describe() leaves out.
    assert cells == [(1.0, "cfg"), (1.0, "interval"), (3.0, "cfg"), (3.0, "interval")]
    assert all(r["solver"] == "euler" and r["steps"] == 4 and r["grid"] == "uniform" for r in rows)
    assert len({r["name"] for r in rows}) == 4
    nfe = {cell: r["nfe"] for cell, r in zip(cells, rows, strict=True)}
    assert all(isinstance(n, float) for n in nfe.values())
    # At w = 1 every method is the conditional field: one row per solver evaluation.
    assert nfe[1.0, "cfg"] == nfe[1.0, "interval"] == Sampler(steps=4).evaluations() == 4
    # At w = 3, CFG takes two rows at each of t = 0, 0.25, 0.5, 0.75; interval one at t = 0, outside
    # [0.2, 0.8].
    assert nfe[3.0, "cfg"] == 8 and nfe[3.0, "interval"] == 7
    assert all(r["n"] == 20 for r in rows)
    # The same noise: at w = 1 the two methods make the same images, so the same scores.
    assert rows[0]["frechet"] == rows[1]["frechet"] and rows[2]["frechet"] != rows[3]["frechet"]


def test_eval_takes_the_fast_preset_and_a_grid(pool_files: dict, capsys: pytest.CaptureFixture) -> None:
    from core.sampling import SAMPLERS

    fast = SAMPLERS["fast"]
    code, stdout, err = invoke(
        capsys, "eval", "--checkpoint", pool_files["model"], "--classifier", pool_files["classifier"],
        "--preset", "fast", "--grid", "shifted", "--guidance", "3", "--per-class", "2", "--no-references",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    (row,) = json.loads(stdout)
    assert (row["solver"], row["steps"], row["grid"], row["guide"]) == (
        fast.solver,
        fast.steps,
        "shifted",
        "cfg",
    )
    assert row["nfe"] == 2 * fast.evaluations()  # CFG: two rows per evaluation at w = 3, no null rows
    assert row["name"] == f"w=3 {fast.solver}×{fast.steps} shifted"


def test_sweep_by_grid_and_method_against_the_labs_cell_at_each_w(
    pool_files: dict, capsys: pytest.CaptureFixture
) -> None:
    out = Path(pool_files["dir"]) / "sweep"
    code, stdout, err = invoke(
        capsys, "sweep", "--checkpoint", pool_files["model"], "--classifier", pool_files["classifier"],
        "--guide", "cfg", "--guide", "zero-star:zero_steps=1", "--solvers", "euler", "--steps", "2,99",
        "--grids", "uniform,shifted", "--guidance", "1,3", "--per-class", "2", "--out-dir", str(out),
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads((out / "sweep.json").read_text())
    cells = [(r["guidance"], r["steps"], r["grid"], r["guide"]) for r in rows]
    expected = [(w, n, grid, guide) for w in (1.0, 3.0) for n in (2, 99)
                for guide in ("cfg", "zero-star") for grid in ("uniform", "shifted")]  # fmt: skip
    assert sorted(cells) == sorted(expected) and len(set(cells)) == 16
    assert len({r["name"] for r in rows}) == 16
    for r in rows:  # zero-star's first step is skipped: its network rows are not spent
        rows_per_step = 1 if r["guidance"] == 1 else 2
        assert r["nfe"] == rows_per_step * (r["steps"] - (r["guide"] == "zero-star")), r
    with (out / "sweep.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(float(t["guidance"]), int(t["steps"]), t["grid"], t["guide"]) for t in table] == cells
    assert [float(t["nfe"]) for t in table] == [r["nfe"] for r in rows]

    lab = {r["guidance"]: r for r in rows if (r["steps"], r["grid"], r["guide"]) == (99, "uniform", "cfg")}
    assert set(lab) == {1.0, 3.0} and lab[1.0]["frechet"] != lab[3.0]["frechet"]
    comparison = json.loads((out / "versus-euler99.json").read_text())
    compared = [(c["guidance"], c["steps"], c["grid"], c["guide"]) for c in comparison]
    assert sorted(compared) == sorted(c for c in expected if c[1:] != (99, "uniform", "cfg"))
    by_cell = dict(zip(cells, rows, strict=True))
    for c, cell in zip(comparison, compared, strict=True):
        assert c["solver"] == "euler"
        assert c["reference"]["value"] == lab[c["guidance"]]["frechet"]  # the lab's cell at its own w
        assert c["frechet"]["value"] == by_cell[cell]["frechet"]
        assert c["difference"] == pytest.approx(c["frechet"]["value"] / c["reference"]["value"] - 1)
        assert isinstance(c["equal"], bool)
    assert "euler × 2, shifted, zero-star" in stdout and "lab (euler × 99)" in stdout
