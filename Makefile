# Set-up, run and test Campaign KB. `make run` and `make test` each do all set-up on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Root installs system packages directly; anyone else through sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install lock lock-upgrade chromium run demo lint typecheck test check

# Every package at the version pinned in requirements.lock (the same install on every machine), then
# the project itself without resolving again; `pip check` fails when pyproject.toml asks for something
# the lock lacks. torch is pinned to 2.13.0+cpu: the CPU build, never the CUDA one.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

install: $(STAMP)

# Rewrite the lock from pyproject.toml (with the dev extra): `make lock` keeps every pin that still
# fits and resolves only what pyproject.toml changed; `make lock-upgrade` moves every package to the
# newest version allowed. pip-tools runs from its own venv: it is not one of the app's dependencies.
LOCK_TOOLS := build/lock-tools
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet --allow-unsafe \
	--extra dev --strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.lock
$(LOCK_TOOLS)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet 'pip-tools==7.7.0'

lock: $(LOCK_TOOLS)/bin/pip-compile
	$(PIP_COMPILE) pyproject.toml

lock-upgrade: $(LOCK_TOOLS)/bin/pip-compile
	$(PIP_COMPILE) --upgrade pyproject.toml

# Debian's Chromium drives the browser tests; Playwright never downloads a browser of its own.
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

demo: install
	$(BIN)/flask --app kb demo

run: demo
	$(BIN)/flask --app kb users bootstrap
	$(BIN)/flask --app kb run --host 127.0.0.1 --port 5000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: install chromium lint typecheck
	$(BIN)/pytest

check: test
