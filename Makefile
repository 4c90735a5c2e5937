# Berth: `make run` serves on 127.0.0.1:8080, `make test` runs the suite against a real engine,
# `make test-unit` the unit tests alone (no root, no engine).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-unit lint openapi bench-archives clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

test: $(VENV)/.dev
	PY=$(PY) scripts/test.sh $(PYTEST_ARGS)

test-unit: $(VENV)/.dev
	$(VENV)/bin/pytest -q tests/unit

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check app

openapi: $(VENV)/.runtime
	$(PY) scripts/export_openapi.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
