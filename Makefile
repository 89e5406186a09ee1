# Two commands on a fresh machine (Python 3.11, pip, make):
#   make demo   install, generate a company, run the stack, show the results
#   make test   install and run the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= var/demo.duckdb
SCALE  ?= mid
SEED   ?= 7

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	rm -f $(DB) $(DB).wal
	$(BIN)/revstack generate --scale $(SCALE) --seed $(SEED) --db $(DB)
	$(BIN)/revstack contracts check --db $(DB)
	$(BIN)/revstack audit --db $(DB)
	$(BIN)/revstack people add revops --role admin --by revops --db $(DB)
	$(BIN)/revstack people add reviewer --role reviewer --by revops --db $(DB)
	$(BIN)/revstack run --db $(DB)
	$(BIN)/revstack app --db $(DB)

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_dedupe.py --million

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
