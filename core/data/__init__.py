"""Labelled image data: sources, the lab's preprocessing with a cache, and device-resident batches."""

from core.data.batches import ImageBatches
from core.data.cache import DATA_ROOT_ENV, default_data_root, load_split
from core.data.sources import DATASETS, DataError

__all__ = ["DATASETS", "DATA_ROOT_ENV", "DataError", "ImageBatches", "default_data_root", "load_split"]
