# Every target CI needs is here; .ci/run calls `make test`, the README's test command.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= jobs.yaml
# Most tests wait on sockets, subprocesses and sleeps, so four workers fit on two cores.
TEST_WORKERS ?= 4

.PHONY: sandbox install dev test lint typecheck unit bench bench-governor bench-faults bench-history chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

## Install, then run the daemon on the built-in sandbox with the embedded SQLite history.
sandbox: install
	$(BIN)/kinsta-scheduler --config $(CONFIG) run --sandbox

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -q tests/unit

## Install the dev dependencies, then lint, type-check and run the whole test suite.
test: dev
	$(MAKE) lint typecheck
	$(BIN)/pytest -q -n $(TEST_WORKERS)

## The fleet benchmark: a night of 300 environments against the rate floor (about five minutes).
bench: install
	$(BIN)/python benchmarks/fleet.py

## The rate-governor benchmark (about two minutes).
bench-governor: install
	$(BIN)/python benchmarks/governor.py

## The long form of the fault suite (about three minutes).
bench-faults: dev
	$(BIN)/python benchmarks/faults.py

## The history benchmark: 1,000,000 tasks on SQLite and on the local PostgreSQL (a few minutes).
bench-history: install
	$(BIN)/python benchmarks/history.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres

## The chaos run: two daemons on one PostgreSQL, kill -9, SIGTERM, database outages and API
## faults for ten minutes, then an audit of every slot, run, operation and request.
chaos: dev
	$(BIN)/python benchmarks/chaos.py --minutes 10

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.egg-info
