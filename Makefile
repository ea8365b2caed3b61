# The two set-up commands of the README, and a few shortcuts. Everything runs from .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test bench hub clean provision session

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Bring up the workshop cluster of node.yml: the hub, web ×2, greeting ×3, listen ×4.
up: $(STAMP)
	$(BIN)/fannode up

# ZooKeeper and RabbitMQ from Debian for tests/integration (needs root or sudo; fast when there).
provision:
	scripts/provision install

# The whole test suite, as CI runs it, after installing what tests/integration needs.
# Without root a developer still gets the rest: those tests skip, except under CI=true.
# Exit status 5 (a -m/-k selection matched no tests) is not a failure. Most tests wait on real
# processes rather than compute, so they run on TEST_WORKERS pytest-xdist workers (3 on 2 cores);
# the tests that need ZooKeeper or RabbitMQ share one worker (tests/conftest.py). TEST_WORKERS=0: serial.
TEST_WORKERS ?= 3
test: $(STAMP)
	scripts/provision install || [ "$$CI" != true ]
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS) || [ $$? -eq 5 ]

# Every benchmark case beside its anchors, one table, bench/results/<time>.json: BENCH_ARGS=--quick for a
# smoke run (< 2 min), --only rpc,web to pick cases. Makes bench/.anchors-venv (nameko, zerorpc) on first
# use, ~40 s, then reuses it; starts its own RabbitMQ (make provision installs it; without, rows are skipped).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# A workshop tmux session: make session S=greeting | greeting-listen | all | node
S ?= all
session: $(STAMP)
	tmuxinator start -p tmuxinator/$(S).yml

hub: $(STAMP)
	$(BIN)/fannode hub

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
