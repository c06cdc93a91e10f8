# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out/run

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The main job: a year of synthetic national demand replayed on the uk-2026 fleet.
run: $(STAMP)
	$(BIN)/arkwright trace synth --fleet uk-2026 --jobs 50000 --load 0.8 --seed 7 --out $(OUT)/trace.csv
	$(BIN)/arkwright simulate --fleet uk-2026 --trace $(OUT)/trace.csv --policy fairshare --out $(OUT)

lint: $(STAMP)
	$(BIN)/ruff check arkwright tests bench
	$(BIN)/ruff format --check arkwright tests bench

# PostgreSQL tests need a server: the script installs and starts one on loopback, or
# says why it could not (those tests then skip with that reason).
test: $(STAMP) lint
	eval "$$(bash scripts/test-postgres.sh)"; $(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/simulate.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
