"""Small made-up data and models: no network, no GPU, no dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoint import save_checkpoint
from core.data import ImageBatches
from core.run_files import DataInfo, RunConfig
from core.trainer import TrainConfig, new_model
from core.unet import UNetConfig

TINY = UNetConfig(
    channels=(8, 16), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8, num_classes=2, image_size=16
)


def bars(n: int, size: int = 16, seed: int = 0, width: int = 2) -> ImageBatches:
    """Two classes of ``size``² images in [-1, 1]: 0 = a horizontal bar, 1 = a vertical bar, anywhere."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    pos = torch.randint(2 + width, size - 2 - width, (n,), generator=g)
    images = -torch.ones(n, 1, size, size)
    for i in range(n):
        rows = slice(int(pos[i]) - width // 2, int(pos[i]) - width // 2 + width)
        if labels[i] == 0:
            images[i, 0, rows, 2:-2] = 1
        else:
            images[i, 0, 2:-2, rows] = 1
    return ImageBatches(images, labels)


def run_config(steps: int = 50, batch_size: int = 16) -> RunConfig:
    """A run's config.json for runs that tests make by hand (no data are read)."""
    return RunConfig("cpu", TINY, TrainConfig(steps, batch_size), DataInfo("mnist", "", 64, "0" * 64))


@pytest.fixture(autouse=True)
def private_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test remembers the app's settings in a file of its own, never in the user's."""
    path = tmp_path_factory.mktemp("config") / "settings.toml"
    monkeypatch.setenv("CFG_TUI_CONFIG", str(path))
    return path


@pytest.fixture
def tiny_config() -> UNetConfig:
    return TINY


TINY_TRAIN = [
    "--channels",
    "8,16",
    "--layers",
    "1",
    "--embed-dim",
    "8",
    "--batch-size",
    "16",
    "--device",
    "cpu",
]
"""Options that make ``cfg-tui train`` take milliseconds per step."""


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with small made-up MNIST IDX files (64 training, 48 test images)."""
    from core.data.idx import write_idx
    from core.data.sources import MNIST, RAW_FILES

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    MNIST.raw_dir(root).mkdir(parents=True)
    for split, n in (("train", 64), ("test", 48)):
        image_name, label_name = RAW_FILES[split]
        write_idx(MNIST.raw_dir(root) / image_name, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(MNIST.raw_dir(root) / label_name, rng.integers(0, 10, n).astype(np.uint8))
    return root


@pytest.fixture
def cli_env(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment for running cfg-tui on the made-up data, in this process or a child."""
    monkeypatch.setenv("CFG_TUI_DATA_ROOT", str(data_root))
    return {**os.environ, "CFG_TUI_DATA_ROOT": str(data_root)}


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``cfg-tui`` as a user would, in a child process."""
    command = [sys.executable, "-m", "tui.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def bars_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose MNIST files hold two learnable classes: 0 = horizontal bar, 1 = vertical."""
    from core.data.idx import write_idx
    from core.data.sources import MNIST, RAW_FILES

    root = tmp_path_factory.mktemp("bars")
    MNIST.raw_dir(root).mkdir(parents=True)
    for seed, (split, n) in enumerate((("train", 512), ("test", 64))):
        data = bars(n, size=28, seed=seed, width=6)
        pixels = ((data.images[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
        image_name, label_name = RAW_FILES[split]
        write_idx(MNIST.raw_dir(root) / image_name, pixels)
        write_idx(MNIST.raw_dir(root) / label_name, data.labels.to(torch.uint8).numpy())
    return root


SMALL = UNetConfig(channels=(8, 16), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8)
"""A small model of MNIST's shape, for the app's tests."""


@pytest.fixture
def small_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny model at a relative path (so that screenshots do not depend on the folder)."""
    monkeypatch.chdir(tmp_path)
    save_checkpoint(tmp_path / "small.safetensors", new_model(SMALL, seed=0).eval())
    return Path("small.safetensors")


async def fill(app, **fields: str) -> None:
    """Set the Sample form's fields by id."""
    for name, value in fields.items():
        app.screen.query_one(f"#{name}").value = value


async def generate(pilot, app, **fields: str):
    """Fill the form's ``fields`` (the uniform grid unless given: the fast preset's fitted grid would
    be fitted first, which the tests of fitting do on purpose), press ctrl+g and wait for the samples."""
    await fill(app, **{"time-grid": "uniform", **fields})
    await pilot.press("ctrl+g")
    return await generated(pilot, app)


async def generated(pilot, app, timeout: float = 60):
    """The Sample screen's ImageGrid once it holds samples."""
    from tui.widgets.image_grid import ImageGrid

    grid = app.screen.query_one(ImageGrid)
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if grid.panels:
            return grid
    raise AssertionError("no samples arrived")
