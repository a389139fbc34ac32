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

$(APT_STAMP): scripts/install-system.sh  # re-run when it lists a new package (e.g. chromium)
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

bench: install ## benchmarks on the local stack; results to BENCHMARKS.md (TOLLGATE_BENCH_DEDUPE_KEYS, default 10M)
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench.run

stack-up: install ## start the local stack (Kafka, PostgreSQL, Prometheus, Alertmanager)
	$(BIN)/tollgate stack up

stack-down: $(STAMP) ## stop the local stack
	$(BIN)/tollgate stack down

audit: $(STAMP) ## security audit: pip-audit of installed deps (needs PyPI's vulnerability data) and ruff's bandit rules (S)
	$(BIN)/ruff check --select S services
	@report=$$(mktemp -d)/audit.json; \
	if $(BIN)/pip-audit --local --skip-editable --progress-spinner off -f json -o "$$report" 2>"$$report.err"; then \
	  echo "pip-audit: no known vulnerabilities in the installed dependencies"; \
	elif [ -s "$$report" ]; then \
	  $(BIN)/python -c 'import json,sys; d=json.load(open(sys.argv[1])); [print("  %s %s: %s (fix: %s)" % (p["name"], p["version"], v["id"], ", ".join(v["fix_versions"]) or "none yet")) for p in d["dependencies"] for v in p.get("vulns", [])]' "$$report"; \
	  echo "pip-audit: vulnerable dependencies found (above)"; exit 1; \
	else \
	  tail -n 5 "$$report.err"; \
	  echo "pip-audit: NOT CHECKED - the vulnerability service could not be reached; run make audit again with network"; \
	fi

.PHONY: help install lint unit test run bench stack-up stack-down audit
