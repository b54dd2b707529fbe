# The README's two commands: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Installed first and on their own, so that nothing else can pull in a different torch.
TORCH ?= torch==2.14.1 torchvision==0.29.1
ARGS ?=

.PHONY: setup run test lint

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
