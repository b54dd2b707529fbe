# The README's two commands: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Installed first and on their own, so that nothing else can pull in a different torch.
TORCH ?= torch==2.14.1 torchvision==0.29.1
ARGS ?=

.PHONY: setup run test lint gpu-check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: setup
	$(VENV)/bin/cfg-tui $(ARGS)

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

# The GPU checks in one go, for a machine with CUDA (MNIST must already be in the data root:
# `cfg-tui data fetch` finds files in <root>/MNIST/raw, .gz or not). Writes runs/gpu-seed and
# runs/gpu-preset: the lab's recipe (bf16) against the gpu preset, each timed and measured.
GPU_SEED ?= runs/gpu-seed
GPU_RUN ?= runs/gpu-preset
gpu-check: setup
	$(VENV)/bin/cfg-tui info
	$(VENV)/bin/cfg-tui bench train --device cuda --compile --repeats 10
	$(VENV)/bin/cfg-tui bench sample --device cuda --repeats 3
	time $(VENV)/bin/cfg-tui train --preset seed --precision bf16 --device cuda --run-dir $(GPU_SEED)
	time $(VENV)/bin/cfg-tui train --preset gpu --device cuda --run-dir $(GPU_RUN)
	$(VENV)/bin/cfg-tui runs --detail $(GPU_RUN)
	$(VENV)/bin/cfg-tui eval --checkpoint $(GPU_SEED) --guidance 1,3,5 --device cuda
	$(VENV)/bin/cfg-tui eval --checkpoint $(GPU_RUN) --guidance 1,3,5 --device cuda
	$(VENV)/bin/cfg-tui eval --checkpoint $(GPU_RUN) --guidance 3 --solver midpoint --steps 8 --seeds 0,1 --device cuda
	$(VENV)/bin/cfg-tui eval check --checkpoint $(GPU_RUN) --device cuda
