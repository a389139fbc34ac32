# Tollgate: every target installs what it needs. `make help` lists them.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := .cache/.apt-installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(APT_STAMP):
	bash scripts/install-system.sh
	mkdir -p .cache && touch $(APT_STAMP)

install: $(STAMP) $(APT_STAMP) ## install Python deps, Debian packages and Kafka jars
	$(BIN)/tollgate stack install

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check services tests bench
	$(BIN)/mypy services

unit: $(STAMP) ## unit tests (no network)
	$(BIN)/pytest tests/unit -q

test: install lint ## install, lint, then unit, integration and e2e tests on the real local stack
	$(BIN)/pytest tests -q

run: install ## start the local stack and run the demo scenario end to end
	$(BIN)/tollgate demo

bench: install ## benchmarks on the local stack; results to BENCHMARKS.md
	$(BIN)/python -m bench.run

stack-up: install ## start the local stack (Kafka, PostgreSQL, Prometheus, Alertmanager)
	$(BIN)/tollgate stack up

stack-down: $(STAMP) ## stop the local stack
	$(BIN)/tollgate stack down

.PHONY: help install lint unit test run bench stack-up stack-down
