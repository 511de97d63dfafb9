# Two commands set up everything on a fresh machine:
#   make run    the main job: the Fashion-MNIST hyperparameter study on the full data
#               (3-4 minutes on the 2-core CPUs of BENCHMARKS.md; LANG_REPORT=es: in Spanish)
#   make test   the test suite
# Both create or reuse .venv. On a machine without an NVIDIA GPU (no nvidia-smi), torch 2.13.0
# comes from PyTorch's CPU index (or a local CPU wheel pip is pointed at) so pip does not pull
# the multi-GB CUDA build from PyPI; with a GPU, PyPI's CUDA build; failing both, plain torch.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
LANG_REPORT ?= en
# PyTorch's CPU wheels: where torch==2.13.0 is looked for too on a machine without a GPU, if
# that index answers (asked only when .venv is set up; where it does not, as on a machine with
# the package registries alone, pip's own indexes and find-links serve)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,$(if $(shell $(PYTHON) -c \
	"import urllib.request as r; r.urlopen('$(TORCH_CPU_INDEX)/', timeout=5)" 2>/dev/null \
	&& echo reachable),--extra-index-url $(TORCH_CPU_INDEX)))
# ../shared/datasets holds MNIST and Fashion-MNIST where it is there; MNISTLAB_DATA may point
# elsewhere; without either, `make run` downloads Fashion-MNIST into the user cache first.
ifneq ($(wildcard ../shared/datasets),)
export MNISTLAB_DATA ?= $(abspath ../shared/datasets)
endif

.PHONY: run test lint venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0" $(TORCH_INDEX) \
		|| $(BIN)/python -m pip install --quiet torch
	$(BIN)/python -m pip install --quiet -e ".[dev,export,tune,ray,tracking]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/mnistlab data fetch fashion-mnist  # nothing to do where the data is already there
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
