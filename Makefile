# Maestro — the two commands are `make run` and `make test`; both set up first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
PIP := $(BIN)/python -m pip

.PHONY: setup run test lint typecheck imports unit services bench bench-rag lock clean

setup: $(STAMP) ## Install everything into .venv from the pinned constraints (idempotent)

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

run: setup ## Serve the API on the embedded defaults (http://127.0.0.1:8000)
	$(BIN)/maestro db upgrade
	$(BIN)/maestro serve

services: ## Make sure PostgreSQL and Redis answer at their default ports (start them if not)
	bash scripts/services.sh

lint: setup
	$(BIN)/ruff check maestro tests
	$(BIN)/ruff format --check maestro tests

typecheck: setup
	$(BIN)/mypy

imports: setup
	$(BIN)/lint-imports

unit: setup services
	$(BIN)/python -m pytest -q

test: setup services lint typecheck imports unit ## Everything CI runs

bench: setup ## Run the benchmarks
	$(BIN)/maestro bench router

bench-rag: setup ## Retrieval quality and latency on the Python 3.11 docs (installs them if missing)
	bash scripts/python-docs.sh && $(BIN)/maestro bench rag

lock: ## Re-pin constraints.txt from what .venv has (local wheel paths become plain pins)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^maestro' \
	  | sed -E 's|^([A-Za-z0-9_.-]+) @ file://.*/[A-Za-z0-9_.]+-([0-9][^-]*)-.*\.whl.*|\1==\2|' > constraints.txt

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
