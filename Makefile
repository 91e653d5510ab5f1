# Every target CI needs is here; .ci/run calls `make test`, the README's test command.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= jobs.yaml
# Most tests wait on sockets, subprocesses and sleeps, so four workers fit on two cores.
TEST_WORKERS ?= 4
# worksteal: a worker that runs out of tests takes half of another's queue, so no long test
# waits at the back of one worker's share while the others stand idle (with the default, two
# workers idled through the last half of the run). tests/conftest.py puts the long tests at
# the front of each worker's share.
PYTEST_XDIST = -n $(TEST_WORKERS) --dist worksteal

# The tests where operation ids matter (the client, the runner, recovery and run ownership, and
# the faults), run a second time by `make test` against a sandbox whose ids repeat per target.
PER_TARGET_TESTS ?= tests/integration/test_client_contract.py tests/integration/test_client_endpoints.py \
	tests/integration/test_runner.py tests/integration/test_recovery.py tests/integration/test_ownership.py \
	tests/integration/test_sandbox_faults.py

.PHONY: sandbox install dev lock test test-ids lint typecheck unit screenshots bench bench-governor bench-faults bench-history chaos test-weekdays clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs take the versions (and hashes) of the lock files, made from pyproject.toml by
# `make lock`; tests/unit/test_deploy.py fails when pyproject asks for what a lock lacks.
install: $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .

dev: $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e '.[dev]'

## Pin every dependency with its hashes (the image and CI install from these files).
lock: $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --quiet -o requirements-dev.lock

## Install, then run the daemon on the built-in sandbox with the embedded SQLite history, its
## dashboard on http://127.0.0.1:$(HTTP_PORT)/ (loopback only).
HTTP_PORT ?= 8787
sandbox: install
	$(BIN)/kinsta-scheduler --config $(CONFIG) run --sandbox --http-port $(HTTP_PORT)

## The README's pictures (docs/*.png), made from the sandbox by the real CLI, daemon and
## chromium: each dashboard page and a client report's first page (tests/screenshots.py).
screenshots: dev
	$(BIN)/python -m tests.screenshots --out docs

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -q tests/unit

## Install the dev dependencies, then lint, type-check and run the whole test suite (operation
## ids fresh per call, the sandbox's default), then the tests where ids matter with repeated ids.
test: dev
	$(MAKE) lint typecheck
	KINSTA_SANDBOX_OPERATION_IDS=fresh $(BIN)/pytest -q $(PYTEST_XDIST)
	$(MAKE) test-ids

## The client, runner and recovery tests against a sandbox whose operation ids repeat per target.
test-ids:
	KINSTA_SANDBOX_OPERATION_IDS=per-target $(BIN)/pytest -q $(PYTEST_XDIST) $(PER_TARGET_TESTS)

## The fleet benchmark: cold and warm nights of 300 and 3,000 environments against the lower
## bound, at the default concurrency (about 30 minutes; a night is killed at its --timeout).
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

## The whole suite seven times, the wall clock of every process it starts set to 03:00 UTC on
## each day of the week (tests/weekday/sitecustomize.py): no test may depend on the day.
WEEK ?= 2026-12-06 2026-12-07 2026-12-08 2026-12-09 2026-12-10 2026-12-11 2026-12-12
test-weekdays: dev
	for day in $(WEEK); do \
	  echo "== $$day (`date -d $$day +%A`)"; \
	  PYTHONPATH=$(CURDIR)/tests/weekday TEST_TRAVEL_TO=$${day}T03:00:00+00:00 $(BIN)/pytest -q \
	    $(PYTEST_XDIST) -W ignore::pytest.PytestAssertRewriteWarning || exit 1; \
	done

## The chaos run: two daemons on one PostgreSQL, kill -9, SIGTERM, database outages and API
## faults for ten minutes, then an audit of every slot, run, operation and request.
chaos: dev
	$(BIN)/python benchmarks/chaos.py --minutes 10

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.egg-info
