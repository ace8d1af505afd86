# make run   - create .venv, install, start the embedded PostgreSQL, migrate it, load the demo
#              and show the reviewers' queue
# make test  - the whole suite against a real PostgreSQL
# make lint  - ruff, mypy and squawk (the migration linter)
# make bench - the benchmark suite on its own embedded server (SCALE=small|medium|large);
#              prints ours vs baseline and writes docs/benchmarks.md

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCALE ?= small

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required: make PYTHON=python3.11 ..." if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

run: install
	$(BIN)/migrationpilot db start
	$(BIN)/migrationpilot db migrate
	$(BIN)/migrationpilot db status --format table
	$(BIN)/migrationpilot demo load --format table
	$(BIN)/migrationpilot rules list --pending --min-confidence 0.9 --format table

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/run.py --scale $(SCALE)

lint: install
	$(BIN)/ruff check migrationpilot_cli tests bench
	$(BIN)/ruff format --check migrationpilot_cli tests bench
	$(BIN)/mypy
	$(BIN)/squawk sql/migrations/*.sql

# The embedded server runs from binaries inside .venv: stop it before removing them.
clean:
	-@test -x $(BIN)/migrationpilot && $(BIN)/migrationpilot db stop
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
