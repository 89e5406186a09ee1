# Two commands on a fresh machine (Python 3.11, pip, make):
#   make demo   install, simulate a quarter of a company with the stack, show the results
#   make test   install and run the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= var/demo.duckdb
SCALE  ?= small
SEED   ?= 7
WEEKS  ?= 13

LOCK   := requirements.lock

.PHONY: install demo test test-fast lint typecheck lock bench clean

# Every install pins what pyproject allows to the versions in requirements.lock, the
# set the suite last passed with (`make lock` makes it anew from the newest releases).
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# A quarter of operation: the company's last WEEKS weeks replayed a week at a time, the
# agents running on each, two simulated reviewers working the batches (docs/simulate.md).
demo: install
	rm -f $(DB) $(DB).wal $(DB).lock $(DB).want
	$(BIN)/revstack simulate --scale $(SCALE) --seed $(SEED) --weeks $(WEEKS) --db $(DB)
	$(BIN)/revstack contracts check --db $(DB)
	$(BIN)/revstack audit --db $(DB)
	$(BIN)/revstack app --as revops --db $(DB)

# Everything CI checks: formatting, lint, types against their baseline, every test.
# Two workers (the machine CI runs on has two cores); a test file stays on one worker, so
# a module's fixture is built once.
test: lint typecheck
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The quick loop while working: no test marked slow, no browser (about a minute).
test-fast: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# mypy against .ci/mypy-baseline.txt: no new error, and the baseline only shrinks
typecheck: install
	$(BIN)/python .ci/mypy_gate.py

lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[dev]'
	{ echo "# pip constraints for every install (make install); written by make lock"; \
	  .lock-venv/bin/python -m pip freeze --all --exclude-editable \
		| grep -v -i -e '^pip==' -e '^revstack'; } > $(LOCK)
	rm -rf .lock-venv

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_dedupe.py --million
	$(BIN)/python bench/bench_concurrency.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
