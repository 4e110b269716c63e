VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install run test unit lint

# Re-installs only when the dependencies change. The system packages the service needs (libmagic,
# Pango for the PDFs) come first: dev/system_packages.sh installs what is missing.
$(VENV)/.installed: pyproject.toml
	bash dev/system_packages.sh
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The checkout's bytecode, brought up to date (only what changed is compiled again). The workflow
# sandbox imports the workflow's modules afresh for every run it starts, and with no bytecode to
# read (PYTHONDONTWRITEBYTECODE set, as on some machines) it compiles them each time (the worker
# spent 27 ms more per lifecycle: bench/results.md). The image has its bytecode from pip.
.PHONY: bytecode
bytecode: install
	$(PY) -m compileall -q activities api core worker workflows dev bench

# dev/ (runner, local Stripe, SMTP sink) is not part of the installed package: it runs from this
# checkout, on the dependencies of the dev extra.
run: bytecode
	$(PY) -m dev.run

# Every layer: tests/unit, tests/surface, tests/stack and tests/e2e (docs/architecture.md, 6), in
# TEST_PROCESSES processes at once (pytest-xdist; each its own servers and its own SQLite file or
# Postgres schema; a file's tests stay in one process), then the tests marked `alone` (the
# scale-out, `make run`'s timed stop) by themselves. SKIP_SLOW=1 leaves out the slow layer
# (marked `slow`: tests/e2e and two long stack tests), which CI runs.
TEST_PROCESSES ?= 4
test: install
ifeq ($(SKIP_SLOW),1)
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile -m "not slow"
else
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile -m "not alone"
	$(PY) -m pytest -m alone
endif

# The fast layers (under 30 s), no worker, Stripe, SMTP or subprocess: tests/unit and tests/surface.
unit: install
	$(PY) -m pytest tests/unit tests/surface

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

# Benchmarks (bench/): starts its own Temporal dev server, Stripe, SMTP, worker and API; prints
# name=value lines; Postgres too when it answers at the default URL. See README, Performance.
.PHONY: bench guard
bench: bytecode
	$(PY) -m bench --with-tests

# A short bench (a few lifecycles): fails if billable actions rise or CPU per lifecycle rises by
# more than half against bench/budget.json. CI runs it.
guard: bytecode
	$(PY) -m bench.guard
