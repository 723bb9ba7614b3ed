# Developer entry points. `make dev` once, then `make check` before every push: it needs no
# root, no Docker, no registry and no network (integration tests: `make integration`, after
# `scripts/ci-env.sh install && scripts/ci-env.sh start`).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: dev check lint typecheck imports unit integration

dev:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev,toolchains,bench]'

# Every step runs even when an earlier one fails; the target fails if any did.
check:
	@failed=""; \
	echo "== ruff"; $(BIN)/ruff check crossplan tests benchmarks || failed="$$failed ruff"; \
	echo "== mypy"; $(BIN)/mypy || failed="$$failed mypy"; \
	echo "== lint-imports"; $(BIN)/lint-imports || failed="$$failed lint-imports"; \
	echo "== pytest tests/unit"; \
	$(BIN)/pytest tests/unit -q -p no:cacheprovider || failed="$$failed pytest"; \
	if [ -n "$$failed" ]; then echo "make check: FAILED:$$failed"; exit 1; fi; \
	echo "make check: all passed"

lint:
	$(BIN)/ruff check crossplan tests benchmarks

typecheck:
	$(BIN)/mypy

imports:
	$(BIN)/lint-imports

unit:
	$(BIN)/pytest tests/unit -q -p no:cacheprovider

integration:
	$(BIN)/pytest tests/integration -q -p no:cacheprovider
