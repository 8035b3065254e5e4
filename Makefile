# Two commands for a new user: `make run` (the demo) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint chaos clean

# gateway/__init__.py holds the version, which the installed metadata copies.
$(STAMP): pyproject.toml gateway/__init__.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "could not create a virtual environment: install Python 3.11+ with venv (Debian: apt-get install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[simulators,test,lint]'
	@touch $(STAMP)

install: $(STAMP)

# Both simulators (they need the extra `simulators`, installed above) and the daemon on the demo config
# and SQLite (data/demo.db); Ctrl-C stops everything.
run: $(STAMP)
	$(BIN)/gateway demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The static gate CI runs before the tests: lint, formatting, and mypy (strict on the
# packages named in pyproject.toml [tool.mypy]). All three run, so that one CI run shows
# every finding; the target fails if any of them does.
lint: $(STAMP)
	status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

# The chaos suite alone (faults on, a daemon killed and restarted), with its figures.
chaos: $(STAMP)
	$(BIN)/python -m pytest -q -s -m chaos

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache *.egg-info
