# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The scheduler core compiled with mypyc for this venv (arkwright/compiled.py). The
# script runs every time and returns at once when the build matches the sources (its
# stamp holds their digest), so an edited, added or deleted core file means a rebuild.
# Without a C compiler the core runs as plain Python.
COMPILED := $(VENV)/arkwright-compiled/stamp.json
OUT    ?= out/run

.PHONY: install compiled run serve test lint bench clean

# The dashboard's chart library comes from the npm registry, pinned by hash (not committed).
VENDOR_JS := arkwright/service/static/vendor/chart.umd.min.js
$(VENDOR_JS): scripts/fetch_vendor.py
	$(PYTHON) scripts/fetch_vendor.py
	@touch $(VENDOR_JS)

$(STAMP): pyproject.toml $(VENDOR_JS)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

compiled: $(STAMP)
	@$(BIN)/python scripts/build_core.py

install: $(STAMP) compiled

# The main job: 50,000 jobs of synthetic national demand (about 24 days) replayed on the
# uk-2026 fleet under fair share; README "Benchmarks" says why not a whole year.
run: $(STAMP) compiled
	$(BIN)/arkwright trace synth --fleet uk-2026 --jobs 50000 --load 0.8 --seed 7 --out $(OUT)/trace.csv
	$(BIN)/arkwright simulate --fleet uk-2026 --trace $(OUT)/trace.csv --policy fairshare --out $(OUT) --report

# The live service with the embedded defaults: SQLite in arkwright-data/, the `local`
# fleet (this machine runs real processes; two remote sites run in scaled time).
# `serve` resolves a relative --data-dir itself; abspath only makes the echoed path exact.
DATA ?= arkwright-data
PORT ?= 8765
serve: $(STAMP) compiled
	@test -s $(DATA)/admin.token || $(BIN)/arkwright admin bootstrap --data-dir $(DATA) \
		--token-file $(DATA)/admin.token >/dev/null
	@echo "Dashboard and API: http://127.0.0.1:$(PORT)  (log in with the token; OpenAPI at /docs, metrics at /metrics)"
	@echo "Token: $$(cat $(DATA)/admin.token)  (export ARKWRIGHT_TOKEN=... for the CLI)"
	$(BIN)/arkwright serve --fleet local --data-dir $(abspath $(DATA)) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check arkwright tests bench
	$(BIN)/ruff format --check arkwright tests bench

# PostgreSQL tests need a server: the script installs and starts one on loopback, or
# says why it could not (those tests then skip with that reason). Two pytest processes:
# pure tests spread over both, tests of shared services run in one group (conftest.py).
# The whole suite runs on the compiled core; the core and simulator tests then run again
# on plain Python (ARKWRIGHT_PURE_PYTHON=1), the path kept for machines without a C
# compiler. In CI a core that failed to compile is an error; elsewhere the suite then
# runs once, on plain Python.
PURE_TESTS := tests/core tests/sim tests/test_compiled.py
test: $(STAMP) compiled lint
	@if [ -s $(COMPILED) ]; then core=compiled; \
	elif [ -n "$$CI" ]; then echo "CI: the core did not compile (see above)"; exit 1; \
	else core=pure; echo "core not compiled: the suite runs on plain Python only"; fi; \
	eval "$$(bash scripts/test-postgres.sh)"; eval "$$(bash scripts/test-slurm.sh)"; \
		eval "$$(bash scripts/test-browser.sh)"; \
		ARKWRIGHT_CORE=$$core $(BIN)/pytest -n 2 --dist loadgroup && \
		if [ $$core = compiled ]; then ARKWRIGHT_PURE_PYTHON=1 ARKWRIGHT_CORE=pure \
			$(BIN)/pytest -n 2 --dist loadgroup $(PURE_TESTS); fi

bench: $(STAMP) compiled
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/compare.py
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || apt-get install -y -qq wrk >/dev/null \
		|| echo "wrk not installed: bench/api.py will use Python clients"
	eval "$$(bash scripts/test-postgres.sh)"; $(BIN)/python bench/api.py
	eval "$$(bash scripts/test-slurm.sh)"; $(BIN)/python bench/slurm.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis arkwright-data
