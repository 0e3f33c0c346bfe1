# 回头看 — the two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: setup bytecode run test ui bench service clean-outputs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]'
	mkdir -p $(DAGSTER_HOME)
	touch $@

## the Dagster instance settings (warehouse pool of 1, run queue): copied once; an edited copy is kept
$(DAGSTER_HOME)/dagster.yaml: | setup
	mkdir -p $(DAGSTER_HOME)
	cp -n config/dagster.yaml $@

## bytecode: the project's own modules compiled once (uv compiles only site-packages; the editable
## install and tests/ would otherwise be compiled again by every process that imports them — a
## `huitoukan run`, each code server and run worker of the UI, each of the suite's subprocesses —
## when PYTHONDONTWRITEBYTECODE is set, as on these machines). Only changed files are compiled again.
bytecode: setup
	$(BIN)/python -m compileall -q pipeline tests

## run: set up, generate the sample district into data/raw/ when it is empty, run every asset
run: setup bytecode $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/huitoukan sample --out data/raw --if-empty
	$(BIN)/huitoukan run

## test: set up, lint (ruff) and run the whole test suite
test: setup bytecode
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder

## ui: the Dagster UI on http://127.0.0.1:3000 (sensors and schedules on) and downloads on :3001
ui: setup bytecode $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/huitoukan ui

## bench: the benchmark at the default sizes (see docs/scaling.md)
bench: setup bytecode
	$(BIN)/huitoukan bench

## service: the office server's units (UI, daemon, downloads) on PostgreSQL, as root — docs/deploy.md
service: setup bytecode
	$(BIN)/huitoukan service install $(SERVICE_ARGS)

clean-outputs:
	rm -rf data/warehouse/*.duckdb* reports/draft reports/public reports/problems reports/quality
