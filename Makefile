# Huifang: two commands on a fresh machine.
#   make demo   the end-to-end demo (SQLite, simulated phone line and SMS)
#   make test   the whole suite (installs what it needs: Debian packages, PostgreSQL, Chromium)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DEBIAN_PACKAGES := espeak-ng sox libsox-fmt-all chromium fonts-noto-cjk postgresql libpango-1.0-0 libpangoft2-1.0-0

.PHONY: demo test serve lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

demo: $(STAMP)
	$(BIN)/huifang demo

serve: $(STAMP)
	$(BIN)/huifang serve

test: $(TEST_STAMP)
	@scripts/install-system-packages $(DEBIAN_PACKAGES)
	@. scripts/test-postgres && $(BIN)/ruff check huifang tests bench && $(BIN)/mypy huifang && $(BIN)/pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check huifang tests bench
	$(BIN)/ruff format --check huifang tests bench
	$(BIN)/mypy huifang

bench: $(TEST_STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
