# Developer entry points. `make demo` runs the whole product locally; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test unit bench lint crd cluster-up cluster-down deps clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

deps: $(BIN)/.installed
	hack/ensure-deps.sh

## demo: local control plane + buckets on SQLite + the operator, and a sample Work taken to success
demo: deps
	$(BIN)/python hack/demo.py

## test: unit and integration tests against real PostgreSQL, buckets, the local control plane
## and the real node (a real kubelet and containerd running the project's image)
test: deps
	hack/cluster build --node containerd
	PYTHON=$(BIN)/python hack/image build
	$(BIN)/python -m pytest

## bench: every benchmark (about 40 minutes); results in bench/results and bench/README.md
bench: deps
	hack/cluster build
	$(BIN)/python -m bench

unit: $(BIN)/.installed
	$(BIN)/python -m pytest tests/unit

lint: $(BIN)/.installed
	$(BIN)/ruff check operator tests hack bench
	$(BIN)/ruff format --check operator tests hack bench
	$(BIN)/lint-imports
	$(BIN)/mypy

## crd: regenerate crds/work.yaml from the pydantic models (and the chart's copy of it)
crd: $(BIN)/.installed
	$(BIN)/workflow crd > crds/work.yaml
	cp crds/work.yaml charts/workflow/files/work-crd.yaml

cluster-up: deps
	hack/cluster up

cluster-down:
	hack/cluster down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
