# One entry point per task; `make test` is what CI runs.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint bench run clean vendor

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

# The chart library of the dashboard, vendored from its npm package (pages work offline, no
# CDN): `make vendor` refreshes it at the pinned version; the files are committed.
CHARTJS_VERSION := 4.6.1
vendor:
	rm -rf .vendor && mkdir .vendor && cd .vendor && npm install --no-save --silent chart.js@$(CHARTJS_VERSION)
	cp .vendor/node_modules/chart.js/dist/chart.umd.min.js api/pages/static/chart.umd.min.js
	cp .vendor/node_modules/chart.js/LICENSE.md api/pages/static/chart.js.LICENSE.md
	rm -rf .vendor

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
