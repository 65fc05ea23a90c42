# Two commands on a fresh machine: `make quickstart` (the main job) and `make test` (every test).
# Both create .venv and install the project into it first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: quickstart test setup bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

quickstart: setup
	$(PY) example_notebooks/run.py example_notebooks/quickstart.ipynb

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) bench/deploy.py
	$(PY) bench/batch.py
	$(PY) bench/fuzz.py
	$(PY) bench/load.py
