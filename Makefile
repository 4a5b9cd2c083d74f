# Every target sets itself up on a fresh machine: nothing has to be installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check system install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,text,serve,ann,postgres,privacy,insight,spark,ray]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shopformer quickstart

# Lint and the one-way import contract (GUIDE §1) before the tests: an upward import fails here.
check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

# System packages the real components of the tests need (a PostgreSQL server, chromium and its driver, a Java runtime for Spark); installs only what is missing.
system:
	bash scripts/install-system-packages.sh

test: system check
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) shopformer-output
