# Two commands set up everything on a fresh machine:
#   make run    the main job: the Fashion-MNIST hyperparameter study on the full data
#               (4-10 minutes on 2 cores; LANG_REPORT=es for the report in Spanish)
#   make test   the test suite
# Both create or reuse .venv. Where this machine offers the CPU build of torch 2.13.0, it is
# installed first so pip does not pull a multi-GB CUDA build (elsewhere: plain pip install torch).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
LANG_REPORT ?= en
# ../shared/datasets holds MNIST and Fashion-MNIST; MNISTLAB_DATA may point elsewhere.
export MNISTLAB_DATA ?= $(abspath ../shared/datasets)

.PHONY: run test lint venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0" || $(BIN)/python -m pip install --quiet torch
	$(BIN)/python -m pip install --quiet -e ".[dev,export,tune,ray,tracking]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/mnistlab study fashion-hparams --lang $(LANG_REPORT) --out studies/fashion-hparams

# one pytest-xdist worker per CPU this process may use, at most 8 (TEST_WORKERS=0: one
# process), a test file per worker at a time: a file's module fixtures (a Ray cluster, an MLflow
# server) are started once. Counted here: xdist's own count takes every CPU of the host, also
# where this process may use two of them.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(min(8, len(os.sched_getaffinity(0)) \
	if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1))")
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) runs .pytest_cache
