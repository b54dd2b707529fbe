"""The lab's preprocessing, done once per split and cached in the data root.

    Resize((32, 32)) bilinear on the PIL image → ToTensor (÷255) → Normalize(0.5, 0.5)

The cache keeps the resized bytes (uint8 ``(N, 1, 32, 32)``) and the labels in a
safetensors file named by dataset, split and :data:`PREPROCESS_VERSION`, with the
sha256 of its tensors inside; a file whose key or hash does not match is rebuilt.
Turning the bytes into floats is the same arithmetic as ToTensor + Normalize, so the
result equals the lab's pipeline exactly.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor
from torchvision import transforms

from core.data.batches import ImageBatches
from core.data.root import DATA_ROOT_ENV as DATA_ROOT_ENV
from core.data.root import default_data_root
from core.data.sources import DATASETS, RAW_FILES, DataError, Dataset, Log, ensure_raw, read_raw_split
from core.files import atomic_write_bytes

PREPROCESS_VERSION = "1"


def resize_like_lab(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` → uint8 ``(N, 1, 32, 32)`` through torchvision's Resize on PIL images."""
    resize = transforms.Resize((32, 32))  # bilinear, as the lab
    out = np.empty((len(images), 1, 32, 32), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i, 0] = np.asarray(resize(Image.fromarray(image)))
    return out


def normalize(images: Tensor) -> Tensor:
    """uint8 → float32 in [-1, 1]: ToTensor's x / 255, then Normalize's (x − 0.5) / 0.5."""
    return images.float().div(255).sub(0.5).div(0.5)


def cache_path(root: Path, dataset: Dataset, split: str) -> Path:
    return root / "cache" / f"{dataset.name}-{split}-preprocess-v{PREPROCESS_VERSION}.safetensors"


def _fingerprint(images: Tensor, labels: Tensor) -> str:
    digest = hashlib.sha256(images.contiguous().numpy().tobytes())
    digest.update(labels.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _read_cache(path: Path, dataset: Dataset, split: str) -> tuple[Tensor, Tensor, str]:
    """The cached bytes, labels and fingerprint; :class:`DataError` says what does not match."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            images, labels = f.get_tensor("images"), f.get_tensor("labels")
    except Exception as e:  # safetensors raises several types for damaged files
        raise DataError(f"cache {path} is unreadable ({str(e).splitlines()[0] if str(e) else e!r})") from None
    key = {"dataset": dataset.name, "split": split, "preprocess": PREPROCESS_VERSION}
    if any(meta.get(k) != v for k, v in key.items()):
        raise DataError(f"cache {path} was made for {meta} rather than {key}")
    fingerprint = _fingerprint(images, labels)
    if fingerprint != meta.get("sha256"):
        raise DataError(f"cache {path} is damaged (its sha256 does not match its contents)")
    return images, labels, fingerprint


def _build_cache(root: Path, dataset: Dataset, split: str, log: Log) -> tuple[Tensor, Tensor, str]:
    ensure_raw(dataset, root, log)
    raw_images, raw_labels = read_raw_split(dataset, root, split)
    start = time.perf_counter()
    images = torch.from_numpy(resize_like_lab(raw_images))
    labels = torch.from_numpy(raw_labels)
    fingerprint = _fingerprint(images, labels)
    meta = {"dataset": dataset.name, "split": split, "preprocess": PREPROCESS_VERSION, "sha256": fingerprint}
    path = cache_path(root, dataset, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, safetensors_bytes({"images": images, "labels": labels}, metadata=meta))
    log(f"{dataset.name} {split}: preprocessed {len(images):,} images in {time.perf_counter() - start:.1f} s")
    return images, labels, fingerprint


def load_split(
    name: str,
    split: str = "train",
    root: Path | None = None,
    device: torch.device | str = "cpu",
    log: Log = print,
) -> tuple[ImageBatches, str]:
    """A whole preprocessed split on ``device`` and its fingerprint (sha256 of the cached tensors).

    The cache is used when it matches; otherwise the raw files are found (see
    :mod:`core.data.sources`) and preprocessed once.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if split not in RAW_FILES:
        raise DataError(f"unknown split {split!r}; choose from {', '.join(RAW_FILES)}")
    dataset, root = DATASETS[name], Path(root or default_data_root())
    cached = _try_cache(cache_path(root, dataset, split), dataset, split, log)
    images, labels, fingerprint = cached or _build_cache(root, dataset, split, log)
    return ImageBatches(normalize(images.to(device)), labels.to(device)), fingerprint


def _try_cache(path: Path, dataset: Dataset, split: str, log: Log) -> tuple[Tensor, Tensor, str] | None:
    """The cache's contents, or None (saying why) when it is missing or does not match."""
    if not path.exists():
        return None
    try:
        return _read_cache(path, dataset, split)
    except DataError as e:
        log(f"{e}; rebuilding it")
        return None
