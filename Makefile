# cis_eval task runner. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# One BLAS thread: stable timings and no oversubscription on small machines.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg
export PYTHONHASHSEED ?= 0

.PHONY: help demo test lint format typecheck data analysis book reference bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,book,bench]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install cis_eval with its test, book and bench extras

demo: $(STAMP) ## validate and analyse the shipped synthetic trial; write output/demo/report.html
	$(BIN)/cis-eval demo --data data/synthetic --out output/demo

# One worker per core; --dist loadfile keeps each test file in one worker, so a file's
# session fixtures (the analysis pipeline, the book build) run once.
test: $(STAMP) lint typecheck ## install, lint, type-check and run the whole test suite (slow checks included)
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=20

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src tests analysis benchmarks
	$(BIN)/ruff format --check src tests analysis benchmarks

format: $(STAMP) ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix src tests analysis benchmarks
	$(BIN)/ruff format src tests analysis benchmarks

typecheck: $(STAMP) ## mypy --strict on the package
	$(BIN)/mypy

data: $(STAMP) ## regenerate data/synthetic from its recorded seed
	$(BIN)/python analysis/00_make_synthetic_data.py

analysis: $(STAMP) ## run the analysis pipeline into analysis/output
	$(BIN)/python analysis/run_all.py

book: $(STAMP) ## build the Jupyter Book (fails on any cell error or warning)
	$(BIN)/jupyter-book build book/ --all -W -n --keep-going

reference: $(STAMP) ## regenerate reference fixtures (needs R with estimatr for the R ones)
	$(BIN)/python tests/reference/make_reference_data.py
	$(BIN)/python tests/reference/make_statsmodels_reference.py
	Rscript tests/reference/make_estimatr_reference.R
	Rscript tests/reference/make_power_reference.R  # needs mvtnorm and pwr; about 7 minutes

bench: $(STAMP) ## run the benchmarks against the named peers
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b; done

clean: ## remove build outputs (keeps .venv)
	rm -rf output book/_build .pytest_cache .ruff_cache
