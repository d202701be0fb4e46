# Audience Moments Playbook — every set-up step is a target here.
# `make demo` and `make test` are all a new machine needs (Python 3.11 + pip).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
DEMO   := data/demo
DEMO_CUSTOMERS ?= 20000

.DEFAULT_GOAL := help
.PHONY: help install demo demo-data intake-demo test lint format lab bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,cluster]"
	$(PY) -m ipykernel install --sys-prefix --name playbook --display-name "Python (playbook)" > /dev/null
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the kit with its pinned dependencies (only when changed)

$(DEMO)/org.yaml: | $(STAMP)
	$(BIN)/playbook synth $(DEMO) --customers $(DEMO_CUSTOMERS)

$(DEMO)/canonical/intake.json: $(DEMO)/org.yaml
	$(BIN)/playbook intake $(DEMO)

demo-data: $(STAMP) $(DEMO)/canonical/intake.json ## Generate the demo organisation and run intake

reports/demo/.rendered: $(DEMO)/canonical/intake.json $(wildcard notebooks/*.ipynb) $(wildcard src/playbook/*.py src/playbook/*/*.py src/playbook/defaults/*.yaml)
	$(BIN)/playbook render $(DEMO)
	@touch $@

demo: demo-data reports/demo/.rendered ## Install, generate the demo organisation and render its full report
	@echo "Report: reports/demo/ (open reports/index.html in a browser)"

test: $(STAMP) $(DEMO)/canonical/intake.json ## Lint (ruff) then run the tests, notebooks included
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q
	$(BIN)/pytest -q --nbval-lax -p no:cacheprovider notebooks

format: $(STAMP) ## Format and fix lint in place
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lab: demo-data ## Open JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks/

bench: demo-data ## Benchmarks: 10k, 100k and 1M customers (writes reports/bench/)
	$(PY) bench/run.py

clean: ## Remove generated data, reports and the virtual environment
	rm -rf $(VENV) $(DEMO) reports/*/ reports/index.html
