# kulta developer tasks. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help install lint format test test-load test-unit bench bench-rollback crd cluster-up cluster-down demo demo-down clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## create .venv with kulta and its dev tools (pinned by constraints.txt)

lint: install ## ruff, ruff format --check, mypy --strict, import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install ## the whole suite: unit, workflow (time-skipping), integration (local cluster, dev server, Prometheus)
	scripts/ensure-prometheus
	$(BIN)/pytest $(PYTEST_ARGS)

test-load: install ## only the load run: 200 rollouts, the worker SIGKILLed every 30 s (minutes)
	scripts/ensure-prometheus
	KULTA_LOAD=1 $(BIN)/pytest tests/load -s $(PYTEST_ARGS)

test-unit: install ## pure tests only, no servers
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: install ## every benchmark on the local stack: table + bench-results.json (ROLLOUTS=1000 DAYS=7)
	scripts/ensure-prometheus
	scripts/cluster up
	$(PY) -m bench --rollouts $${ROLLOUTS:-1000} --experiment-days $${DAYS:-7}

bench-rollback: install ## only the rollback-latency benchmark (RUNS=7)
	scripts/ensure-prometheus
	scripts/cluster up
	$(PY) -m bench --only rollback --rollback-runs $${RUNS:-7}

crd: install ## regenerate deploy/crd.yaml from workflows/model.py
	$(PY) -m kulta.crd > deploy/crd.yaml

cluster-up: ## start the local control plane (builds it once from Go modules)
	scripts/cluster up

cluster-down: ## stop the local control plane
	scripts/cluster down

STRATEGY ?= canary
demo: install ## run a rollout end to end on the local stack (STRATEGY=canary|blue-green|ab-testing|simple|release)
	$(PY) -m kulta.demo up --strategy $(STRATEGY)

demo-down: install ## stop everything the demo started
	$(PY) -m kulta.demo down

clean: ## remove the virtualenv and caches (not ~/.cache/kulta)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
