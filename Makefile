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
# agents running on each, two simulated reviewers working the batches (docs/simulate.md);
# then the risk flags' backtest against truth, which the dashboard reads rather than runs.
demo: install
	rm -rf $(DB) $(DB).wal $(DB).lock $(DB).want $(DB).queue
	$(BIN)/revstack simulate --scale $(SCALE) --seed $(SEED) --weeks $(WEEKS) --db $(DB)
	$(BIN)/revstack contracts check --db $(DB)
	$(BIN)/revstack audit --db $(DB)
	$(BIN)/revstack backtest --db $(DB)
	$(BIN)/revstack app --as revops --db $(DB)

# Everything CI checks: formatting, lint, types against their baseline, every test.
# Two workers (the machine CI runs on has two cores); a test file stays on one worker, so
# a module's fixture is built once. The slowest tests are listed at the end: the suite's
# time is kept under about ten minutes on two cores, and this says where it goes.
test: lint typecheck
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=30

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

# Every bench in bench/, one after another (hours: the forecast's five backtests and the
# calibration's simulations are most of it). Each prints its figures with the machine's
# load; none asserts. The companies they share are made once under var/bench.
# bench_deal_prep_output.py and state_digest.py are left out: they compare two checkouts'
# outputs (briefings; every table), not a figure.
BENCH := var/bench
bench: install
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,bench]'
	mkdir -p $(BENCH)
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/realism.py --scale mid --seed 0
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_engine_floor.py
	$(BIN)/python bench/bench_engine_instructions.py
	$(BIN)/python bench/bench_commit_memory.py
	$(BIN)/python bench/bench_expiry.py
	$(BIN)/python bench/bench_dedupe.py --million
	$(BIN)/python bench/bench_identity_lists.py --answers 20
	$(BIN)/python bench/bench_concurrency.py
	rm -f $(BENCH)/mid1.duckdb $(BENCH)/mid1.duckdb.wal
	$(BIN)/revstack generate --scale mid --seed 1 --db $(BENCH)/mid1.duckdb
	$(BIN)/python bench/bench_pipeline.py --db $(BENCH)/mid1.duckdb
	$(BIN)/python bench/bench_identity_memory.py --db $(BENCH)/mid1.duckdb --kind accounts
	$(BIN)/python bench/bench_identity_memory.py --db $(BENCH)/mid1.duckdb --kind contacts
	$(BIN)/python bench/bench_dedupe_scale.py --db $(BENCH)/mid1.duckdb --splink
	$(BIN)/python bench/bench_forecast_fit.py --db $(BENCH)/mid1.duckdb
	$(BIN)/python bench/bench_forecast_incremental.py --db $(BENCH)/mid1.duckdb
	$(BIN)/python bench/bench_risk_schedule.py --db $(BENCH)/mid1.duckdb --fit-at 2026-08-27
	$(BIN)/python bench/bench_pages.py --db $(BENCH)/pages-mid1.duckdb
	rm -f $(BENCH)/small1.duckdb $(BENCH)/small1.duckdb.wal
	$(BIN)/revstack generate --scale small --seed 1 --db $(BENCH)/small1.duckdb
	$(BIN)/revstack people add revops --role admin --by revops --db $(BENCH)/small1.duckdb
	$(BIN)/revstack people add rev --role reviewer --by revops --db $(BENCH)/small1.duckdb
	$(BIN)/revstack run --db $(BENCH)/small1.duckdb
	$(BIN)/python bench/review_scenario.py --db $(BENCH)/small1.duckdb
	$(BIN)/python bench/bench_sequential_batches.py --seed 1
	rm -rf $(BENCH)/weekly && mkdir -p $(BENCH)/weekly
	$(BIN)/python bench/bench_weekly_run.py --scale mid --seed 7 --as-of 2026-09-24 --keep $(BENCH)/weekly
	$(BIN)/python bench/bench_identity_weekly.py --weekly $(BENCH)/weekly/weekly.duckdb
	$(BIN)/python bench/bench_weekly_agents.py --from-start $(BENCH)/weekly --keep $(BENCH)/weekly/agents.duckdb
	$(BIN)/python bench/bench_weekly_agents.py --weekly $(BENCH)/weekly/agents.duckdb
	$(BIN)/python bench/bench_agents_pooled.py
	$(BIN)/python bench/bench_calibration.py --dir $(BENCH)/calibration
	$(BIN)/python bench/forecast_accuracy.py --dir $(BENCH)/accuracy
	$(BIN)/python bench/bench_account_merges.py --dir $(BENCH)/merges
# The large company (issue #20): about an hour and up to 16 GB a step, so last
	rm -rf $(BENCH)/large && mkdir -p $(BENCH)/large
	$(BIN)/python bench/bench_large.py --keep $(BENCH)/large
	$(BIN)/revstack people add ana --role admin --by ana --db $(BENCH)/large/work.duckdb
	$(BIN)/revstack people add rev --role reviewer --by ana --db $(BENCH)/large/work.duckdb
	$(BIN)/python bench/bench_pages.py --db $(BENCH)/large/work.duckdb --cache on --repeat 3
	$(BIN)/python bench/bench_decide_latency.py --db $(BENCH)/large/work.duckdb

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
