# Two commands on a fresh machine: `make quickstart` (the main job) and `make test` (every test).
# Both create .venv and install the project into it first; the install builds the JupyterLab sidebar
# (labextension/, with Node.js through jlpm) and ships it prebuilt in the package.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# jlpm, jupyter and python from the venv; the UI test uses Debian's chromium, never a downloaded browser.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
CHROMIUM ?= /usr/bin/chromium
LABEXT_SOURCES := $(wildcard labextension/src/*.ts labextension/src/*.tsx labextension/style/* labextension/schema/*) labextension/package.json labextension/yarn.lock

.PHONY: quickstart test test-python test-ts test-ui setup bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LABEXT_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	rm -rf nimbus_jupyter/labextension  # built again from the sources by the install's build hook
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

quickstart: setup
	$(PY) example_notebooks/run.py example_notebooks/quickstart.ipynb

test: test-python test-ts test-ui

test-python: setup
	$(PY) -m pytest -q -p no:cacheprovider

test-ts: setup
	cd labextension && jlpm install --immutable && jlpm test

test-ui: setup
	@test -x $(CHROMIUM) || { echo "the UI test needs Debian's chromium at $(CHROMIUM): apt-get install -y chromium (.ci/run does)"; exit 1; }
	cd ui-tests && jlpm install --immutable && CHROMIUM=$(CHROMIUM) jlpm playwright test

bench: setup
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) bench/deploy.py
	$(PY) bench/batch.py
	$(PY) bench/fuzz.py
	$(PY) bench/load.py
