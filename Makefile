# `make test` and `make serve` each build the virtual environment they need on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint serve bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Two workers, each taking the next test as it frees up (worksteal: the long end-to-end tests do not leave
# one worker idle at the end); the 15 slowest tests are timed in every run.
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 --dist worksteal --durations=15

# The web lab's tests drive a real headless Chromium: Debian's chromium and chromium-driver packages.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "the web lab's tests need chromium and chromium-driver: sudo make browser"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

serve: $(STAMP)
	$(BIN)/rewards-api serve

bench: $(STAMP)
	$(BIN)/python benchmarks/env_throughput.py
	$(BIN)/python benchmarks/learning.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
