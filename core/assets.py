"""Files that ship with cfg-tui."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_MODEL = ASSETS / "mnist-cpu.safetensors"
"""A U-Net trained with ``cfg-tui train --preset cpu``: the default of ``sample`` and the app."""
BUNDLED_GUIDE = ASSETS / "mnist-cpu-guide.safetensors"
"""An early snapshot of the bundled model's training run: the weaker model of ``--guide auto``."""
CLASSIFIER = ASSETS / "mnist-classifier.safetensors"
"""The MNIST classifier of ``cfg-tui eval`` (``cfg-tui eval train-classifier`` remakes it)."""
