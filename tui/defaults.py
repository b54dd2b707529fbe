"""One vocabulary and one set of defaults for the command line and the app.

``cfg-tui sample`` and the Sample screen, ``cfg-tui train`` and the Train screen start from these
values and name them with these words; nothing here imports torch (the CLI's ``--help`` reads it).
"""

from __future__ import annotations

DIGITS = "0-9"
"""The rows: every class of the model."""
GUIDANCE = "1,3,5"
"""Guidance scales w, one panel each: no guidance, the lab's 3, and a strong one."""
PER_CLASS = 4
"""Samples per class (one row per class)."""
SEED = 0
"""Seed of the initial noise."""
SAMPLER_PRESET = "fast"
"""The fewest network evaluations measured to give the lab's quality; ``lab`` is the lab's Euler 99."""
TRAIN_PRESET = "auto"
"""``seed`` (the lab's recipe) on a GPU, else ``cpu``."""
NULL_NAME = "null"
"""The unconditional row (the null label), on the command line, in the picker and as a row label."""

# The words, where the CLI has an option and the app a field: the option without its dashes.
PER_CLASS_LABEL = "per class"
LR_LABEL = "lr"
