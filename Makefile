# papermail: `make test` checks everything; `make demo` shows the pipeline offline.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install test lint typecheck unit demo run preview check bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install papermail with its dev tools

test: lint typecheck unit  ## linters, type checker and tests (what CI runs)

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests scripts bench
	$(BIN)/ruff format --check pipeline tests scripts bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

demo: $(STAMP)  ## the whole pipeline on the bundled sample day, into outbox/
	$(BIN)/papermail demo

run: $(STAMP)  ## the real daily batch for yesterday (UTC)
	$(BIN)/papermail run

preview: $(STAMP)  ## render every subscriber's email into preview/
	$(BIN)/papermail preview

check: $(STAMP)  ## validate the subscriber files
	$(BIN)/papermail check

bench: $(STAMP)  ## measure throughput, scaling, memory, quality (BENCH_ARGS=--quick: under a minute)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:  ## remove the virtual environment, caches and generated files
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache preview outbox build *.egg-info
