"""Labelled image data: sources, the lab's preprocessing with a cache, and device-resident batches.

The batches and the cache load torch, so they are imported when first asked for: the names of the
datasets and the data root are read by commands that start without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from core.data.root import DATA_ROOT_ENV, default_data_root
from core.data.sources import DATASETS, DataError

if TYPE_CHECKING:
    from core.data.batches import ImageBatches
    from core.data.cache import load_split

__all__ = ["DATASETS", "DATA_ROOT_ENV", "DataError", "ImageBatches", "default_data_root", "load_split"]

_LAZY = {"ImageBatches": "core.data.batches", "load_split": "core.data.cache"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
