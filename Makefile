# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: install, then improve FunSearch's bin packing heuristic (offline, <= 10 minutes on 2 cores)
demo: $(STAMP)
	$(BIN)/rsi run examples/binpack

## test: install, then the whole suite (slow end-to-end checks included, on small budgets)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## test-fast: the suite without the slow end-to-end group
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## bench: the benchmark tables of the README
bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/binpack.py

clean:
	rm -rf $(VENV) runs .pytest_cache
