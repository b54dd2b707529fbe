import csv
import json
from pathlib import Path

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
        "--guidance", "1,3", "--per-class", "3", "--steps", "2", "--json", str(out),
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads(out.read_text())
    assert [r["name"] for r in rows] == ["real training images", "noise", "w=1 euler×2", "w=3 euler×2"]
    assert [r["nfe"] for r in rows] == [0, 0, 2, 4]
    for row in rows:
        assert (
            0 <= row["accuracy"] <= 1
            and row["frechet"] >= 0
            and set(row["frechet_per_class"]) <= set("0123456789")
        )
    assert "real training images" in stdout and "frechet" in stdout


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
    ]:
        code, _, err = invoke(capsys, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, (args, err)
