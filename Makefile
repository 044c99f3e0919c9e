# Two commands: `make run` starts Kafka and every service; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup system-deps venv kafka browser postgres run test test-unit test-cluster lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps: ## Java 17+ and Maven (apt-get when missing)
	@scripts/ensure-system-deps.sh

venv: $(VENV)/.installed ## the Python environment

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

kafka: venv ## Java, Maven and Apache Kafka's jars from Maven Central (cached), unless KAFKA_BOOTSTRAP_SERVERS is set
ifeq ($(KAFKA_BOOTSTRAP_SERVERS),)
	@scripts/ensure-system-deps.sh
	@$(BIN)/python -m devtools.localkafka fetch
else
	@echo "using the Kafka cluster at $(KAFKA_BOOTSTRAP_SERVERS): nothing to provision"
endif

setup: venv kafka ## everything the commands below need

BROKERS ?= 1

run: setup ## start Kafka and all five services; Ctrl-C stops them; BROKERS=3: a three-node cluster
	DEVSTACK_BROKERS=$(BROKERS) exec $(BIN)/python -m devtools.devstack  # make itself is its parent

browser: ## Debian's Chromium for the dashboard's browser test (apt-get when missing)
	@scripts/ensure-chromium.sh

postgres: ## PostgreSQL's server programs, for the order store's tests on PostgreSQL (apt-get when missing)
	@scripts/ensure-postgres.sh

test: setup browser postgres ## the whole suite: unit, integration (real broker, real PostgreSQL), end to end (browser too)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-cluster: setup ## a three-node cluster whose brokers are killed under load (~5 min, never in test)
	$(BIN)/python -m pytest tests/cluster -m cluster -s $(PYTEST_ARGS)

test-unit: venv ## the pure tests only, no broker
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: venv ## ruff, mypy and the import contracts (orderflow.kafka is the only door to kafka-python)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

BENCH_ARGS ?=

$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[bench]'
	@touch $@

bench: $(VENV)/.bench-installed ## figures against their ceilings on its own broker (~10 min, never in test); BENCH_ARGS=--quick
	@scripts/ensure-system-deps.sh
	@scripts/ensure-bench-tools.sh
	@$(BIN)/python -m devtools.localkafka fetch
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## remove the venv, jars, broker data and run files
	rm -rf $(VENV) .kafka .run .pytest_cache
