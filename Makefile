# Self-documenting Makefile: `make` alone lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RAW := data/raw
PROCESSED := data/processed
REPORTS := reports
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CAMPAIGN ?= C01
export MPLBACKEND := agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.DEFAULT_GOAL := help
.PHONY: help setup data report postmortem test validate lab bench env-yml clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "}; /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (analysis)" >/dev/null
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv from the pinned requirements, install the package and the Jupyter kernel

data: $(STAMP) ## Simulate the demo data (if data/raw is empty) and ingest it into data/processed
	@if [ -z "$$(ls -A $(RAW) | grep -v '^.gitkeep$$')" ]; then \
	  echo "data/raw is empty: simulating the demo data set"; \
	  $(PY) -m analysis simulate --out $(RAW); \
	fi
	$(PY) -m analysis ingest --raw $(RAW) --out $(PROCESSED)

report: data ## Produce one HTML report per campaign from the demo data (reports/index.html)
	$(PY) -m analysis report --data $(PROCESSED) --out $(REPORTS) --jobs $(JOBS)
	@echo "Reports written: $(REPORTS)/index.html"

postmortem: data ## Write the post-mortem of CAMPAIGN (default C01) to reports/postmortem/CAMPAIGN/postmortem.html
	$(PY) -m analysis postmortem --data $(PROCESSED) --campaign $(CAMPAIGN) --out $(REPORTS)/postmortem

test: $(STAMP) ## Lint (ruff), then run the whole test suite (pinned seeds; fast)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "not slow" tests

validate: $(STAMP) ## Many-seed validation studies: write the tables into docs/, then assert the targets
	$(PY) benchmarks/validation.py
	$(PY) -m pytest -q -m slow tests

lab: data ## Open JupyterLab on the explore notebook (the demo data are prepared first)
	$(VENV)/bin/jupyter lab notebooks/00_explore.ipynb

bench: $(STAMP) ## Performance benchmarks (ratios against baselines); writes docs/performance.md sections
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/kpis.py
	$(PY) benchmarks/lift.py
	$(PY) benchmarks/attribution.py
	$(PY) benchmarks/reports.py

env-yml: $(STAMP) ## Regenerate environment.yml from requirements.lock
	$(PY) -m analysis._envfile > environment.yml

clean: ## Remove generated data and reports (keeps raw inputs you placed yourself out of git)
	rm -rf $(PROCESSED)/* $(REPORTS)/*
	@touch $(PROCESSED)/.gitkeep $(REPORTS)/.gitkeep
