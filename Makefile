# One entry point per task; `make test` is what CI runs.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint bench run clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

run: install
	$(VENV)/bin/ledger serve

# Ratios to raw PostgreSQL and SQLite, in one run: see benchmarks/README.md (`--quick`: ~2 min).
bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
