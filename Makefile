# The two commands a new user needs:
#   make reports   set up .venv, generate the demo data if missing, run every notebook for every segment
#   (make snapshot SOURCE=<your data> does the same on your company's data; docs/scheduling.md)
#   make test      set up .venv, generate the demo data if missing, run the lint checks and every test
# .venv is installed from requirements/lock.txt (exact versions for Linux, Python 3.11): a new release upstream
# cannot break a clean checkout. After changing pyproject.toml's dependencies: make lock.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements/lock.txt
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
MONTH  ?=
SOURCE ?=
ENGINE ?=
PORT   ?= 8866
SHELL  := /bin/bash
# a machine's pip configuration may name package folders that do not exist, and pip then warns about each one
# on every install: those lines are left out, every other message shows and pip's exit status is kept
PIP_OUT = 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; exit $${PIPESTATUS[0]}

.PHONY: setup demo reports snapshot app lab test lint lock docs bench clean java postgres

setup: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing .venv from $(LOCK) (a few minutes the first time)"
	@$(BIN)/python -m pip install --quiet --upgrade pip $(PIP_OUT)
	@$(BIN)/python -m pip install --quiet -r $(LOCK) $(PIP_OUT)
	@$(BIN)/python -m pip install --quiet --no-deps -e . $(PIP_OUT)
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: setup
	@test -f data/demo/ground_truth.json || $(BIN)/saaskpi demo

# the demo company's snapshot (what a fresh clone shows)
reports: demo
	$(BIN)/saaskpi snapshot $(if $(MONTH),--month $(MONTH))

# the company's snapshot: `make snapshot SOURCE=/srv/acme-data` (required; never the demo): validated first, so
# bad data stops the job before any page runs (exit 2, nothing written)
snapshot: setup
	@test -n "$(SOURCE)" || { echo "make snapshot needs SOURCE=<the company's data: a folder, a .duckdb file or a Spark URL>; make reports runs the demo company" >&2; exit 2; }
	$(BIN)/saaskpi validate "$(SOURCE)"
	$(BIN)/saaskpi snapshot --source "$(SOURCE)" $(if $(MONTH),--month $(MONTH)) $(if $(ENGINE),--engine $(ENGINE))

# the apps: on the demo, or `make app SOURCE=/srv/acme-data` (validated before the server starts)
app: setup
	$(BIN)/saaskpi app --port $(PORT) $(if $(SOURCE),--source "$(SOURCE)") $(if $(ENGINE),--engine $(ENGINE))

lab: demo
	$(BIN)/jupyter lab notebooks/

docs: setup
	$(BIN)/saaskpi docs

test: lint demo java postgres
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# what a maintainer expects before tests: lint, formatting and types (settings in pyproject.toml)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# the lock after a change to pyproject.toml, for Linux x86_64 and Python 3.11: pins kept where they still fit,
# new packages at their newest; `make lock UPGRADE=--upgrade` re-pins everything to the newest inside the ranges
UPGRADE ?=
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv $(PIP_OUT)
	$(BIN)/uv pip compile pyproject.toml --extra dev $(UPGRADE) --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o $(LOCK)

# the Spark engine's parity tests need a Java runtime; install Debian's when it is missing (as root)
java:
	@command -v java >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null; } || echo "Java is missing: the Spark parity tests will be skipped"

# the PostgreSQL source's tests start a throwaway cluster (tests/pg/cluster.py); install Debian's server when
# initdb is missing (as root). Without it they skip locally and fail in CI (CI=true).
postgres:
	@$(BIN)/python tests/pg/cluster.py install || echo "PostgreSQL is missing: its tests will be skipped (and fail in CI)"

bench: demo
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/snapshot.py
	$(BIN)/python benchmarks/app.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/import_invoices.py
	$(BIN)/python benchmarks/import_events.py
	$(BIN)/python benchmarks/store_cpu.py
	$(BIN)/python benchmarks/kernels.py
	$(BIN)/python benchmarks/postgres.py

clean:
	rm -rf reports/ .pytest_cache
