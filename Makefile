# Two commands for a new user: `make run` (the demo) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test chaos clean

# gateway/__init__.py holds the version, which the installed metadata copies.
$(STAMP): pyproject.toml gateway/__init__.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "could not create a virtual environment: install Python 3.11+ with venv (Debian: apt-get install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[simulators,test]'
	@touch $(STAMP)

install: $(STAMP)

# Both simulators (they need the extra `simulators`, installed above) and the daemon on the demo config
# and SQLite (data/demo.db); Ctrl-C stops everything.
run: $(STAMP)
	$(BIN)/gateway demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The chaos suite alone (faults on, a daemon killed and restarted), with its figures.
chaos: $(STAMP)
	$(BIN)/python -m pytest -q -s -m chaos

clean:
	rm -rf $(VENV) data .pytest_cache *.egg-info
