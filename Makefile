# Space Pearl. Needs only python3 (3.11+) and make: every target uses the virtualenv's own
# binaries (.venv/bin/...), so no activated virtualenv is assumed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-installed whenever pyproject.toml changes.
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run migrate test lint format clean bench bench-quick soak check-deploy

help:
	@echo "make run      start PostgreSQL, Redis and the API (http://127.0.0.1:8000/api/v1)"
	@echo "make test     run the test suite (PYTEST_ARGS='-k name -x' to narrow it)"
	@echo "make lint     ruff check, ruff format --check, mypy"
	@echo "make format   apply ruff's fixes and formatting"
	@echo "make migrate  migrate DATABASE_URL (or the embedded database) to head"
	@echo "make bench    benchmarks with same-run baselines (bench/results.json); bench-quick: small scale"
	@echo "make soak     long crash, fault and hostile-input runs, with a summary"
	@echo "make check-deploy  validate docker-compose.yml (Compose v2) and the nginx config (nginx -t)"
	@echo "make clean    remove .venv and caches (not .data/)"

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) is older than Python 3.11 (set PYTHON=python3.11)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt install python3-venv)" >&2; \
		exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/pearl up

migrate: $(INSTALLED)
	$(BIN)/pearl migrate

test: $(INSTALLED)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

bench: $(INSTALLED)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(INSTALLED)
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

soak: $(INSTALLED)
	$(BIN)/python -m tests.soak $(SOAK_ARGS)

check-deploy: $(INSTALLED)
	bash deploy/check.sh

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
