# `make test` is the one command CI runs: install into .venv, then lint, type-check and test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install test lint bench run console

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench.core
	$(BIN)/python -m bench.slack
	$(BIN)/python -m bench.slack_streaming
	$(BIN)/python -m bench.discord
	$(BIN)/python -m bench.summary
	$(BIN)/python -m bench.faults
	$(BIN)/python -m bench.files
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.socket_mode
	$(BIN)/python -m bench.answer_cost
	$(BIN)/python -m bench.retrieval

console: install
	$(BIN)/python -m bot console

run: install
	$(BIN)/python -m bot run
