# speechssl: `make demo` runs the embedded recipe end to end, `make test` runs the tests
# and linters.  Each sets up the virtual environment first (`make env`).

SHELL := /bin/bash
PYTHON ?= python3
# The torch requirement.  torch==2.13.0 is the CPU build on these machines; on a GPU
# machine use e.g. `make env TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'`.
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHELL_SCRIPTS = $(shell find . -path ./.venv -prune -o -type f -name '*.sh' -print) \
	$(wildcard egs/*/run.sh) .ci/run
DOCKERFILES := docker/Dockerfile.cpu docker/Dockerfile.gpu

.PHONY: env demo test lint bench clean

env: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: env
	cd egs/mini && ./run.sh

test: env
	$(BIN)/pytest -q
	$(MAKE) lint

lint: env
	$(BIN)/ruff check ssl tests bench hubconf.py
	$(BIN)/shellcheck -x $(sort $(patsubst ./%,%,$(SHELL_SCRIPTS)))
	$(BIN)/hadolint $(DOCKERFILES)

bench: env
	for b in bench/bench_*.py; do $(BIN)/python "$$b" || exit 1; done

clean:
	rm -rf $(VENV) bench/out
