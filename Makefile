# Two entry points: `make run` (set up, train the default model, report test metrics) and
# `make test` (set up, run the test suite). Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PRESET ?= default
DATA_URL ?=  # another address to fetch the data set from, when no copy is found

.PHONY: install run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/stocksent data fetch --if-missing $(if $(strip $(DATA_URL)),--url $(DATA_URL))
	$(BIN)/stocksent train --preset $(PRESET) --out models/$(PRESET) --reuse

test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/suite.py --json bench/results/suite.json
	$(BIN)/python bench/train_time.py --json bench/results/train_time.json

clean:
	rm -rf $(VENV) models runs
