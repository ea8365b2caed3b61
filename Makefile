# The two set-up commands of the README, and a few shortcuts. Everything runs from .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test bench hub clean

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Bring up the local cluster. Until `fannode up` and node.yml land, that is the hub;
# start instances beside it with `fannode instance --config conf/greeting.yml`.
up: $(STAMP)
	$(BIN)/fannode hub

# The whole test suite, as CI runs it.
# Exit status 5 (a -m/-k selection matched no tests) is not a failure.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.events
	$(BIN)/python -m bench.web

hub: $(STAMP)
	$(BIN)/fannode hub

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
