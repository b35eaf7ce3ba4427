# facility-agent — the two commands a new user types are `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check eval bench clean

# (Re)install when .venv is missing or pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/facility-agent demo

test: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

eval: $(STAMP)
	$(BIN)/facility-agent eval --suite --report eval-report

bench: $(STAMP)
	-$(BIN)/facility-agent bench ingest
	-$(BIN)/facility-agent bench quality
	-$(BIN)/facility-agent bench whatif
	-$(BIN)/facility-agent bench decide
	-$(BIN)/facility-agent bench bacnet

clean:
	rm -rf $(VENV) eval-report .pytest_cache .mypy_cache .ruff_cache
