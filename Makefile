# ftctl developer entry points. `make demo` and `make test` work on a fresh
# machine with Python >= 3.11 and no GPU; both create .venv when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of torch; an unpinned torch pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: demo test quick lint unit bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check '$(TORCH)' -e '.[train,dev]'
	# An editable install compiles no bytecode; do it once, as pip does for a regular install.
	$(BIN)/python -m compileall -q ftctl
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: $(STAMP) lint unit

# Lint and every test but those marked slow (they train models or run long scenarios).
quick: $(STAMP) lint
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check ftctl tests bench scripts
	$(BIN)/ruff format --check ftctl tests bench scripts
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/lock.py
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/plan.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/apply.py
	$(BIN)/python bench/ssh.py

clean:
	rm -rf $(VENV) .ftctl outputs registry .pytest_cache .mypy_cache .ruff_cache
