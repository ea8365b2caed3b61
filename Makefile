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

# Bring up the workshop cluster (node.yml). Until `fannode up` lands, this runs the hub.
up: $(STAMP)
	$(BIN)/fannode $(if $(wildcard node.yml),up,hub)

# The whole test suite, as CI runs it.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

hub: $(STAMP)
	$(BIN)/fannode hub

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
