# Two commands do all the set-up (see README.md):
#   make lab    create/refresh .venv, then start JupyterLab on the course
#   make test   create/refresh .venv, then run the whole test suite (CI runs exactly this)
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The environment the course runs in: .venv, or with USE_ACTIVE_ENV=1 the
# virtual or conda environment active in this shell (installed into, not replaced).
ifeq ($(USE_ACTIVE_ENV),1)
ENV_DIR := $(or $(VIRTUAL_ENV),$(CONDA_PREFIX))
ifeq ($(ENV_DIR),)
$(error USE_ACTIVE_ENV=1 but no virtual or conda environment is active)
endif
else
ENV_DIR := $(CURDIR)/.venv
endif
BIN := $(ENV_DIR)/bin
# nbgrader shells out to tools in the environment's bin/ (alembic, jupyter-*),
# so every target runs with that folder first on PATH.
export PATH := $(BIN):$(PATH)

# Interpreter that creates .venv (see scripts/find-python.sh for the order and why):
# PYTHON=/path/to/python3 overrides it. Probed only when .venv is created.
PYTHON ?= $(shell scripts/find-python.sh)

STAMP := $(ENV_DIR)/.mp-course-installed
PYTEST := $(BIN)/python -m pytest -rs
START_METHODS := spawn,forkserver,fork
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NBVAL := --nbval --nbval-current-env --nbval-cell-timeout=120 \
  --nbval-sanitize-with tests/nbval_sanitize.cfg
# GNU make >= 4 can keep each parallel target's output together; make 3.81
# (macOS) has no --output-sync, and interleaves.
OUTPUT_SYNC := $(if $(filter 3.%,$(MAKE_VERSION)),,--output-sync=target)

.PHONY: help env lock lab test test-unit test-notebooks test-browser test-python lint outputs grade release clean

help:
	@echo "make lab      set up .venv and start JupyterLab on the course"
	@echo "make test     set up .venv and run every test (what CI runs)"
	@echo "make test-browser  the course in real JupyterLab in headless Chromium"
	@echo "make env      set up .venv only (USE_ACTIVE_ENV=1: the active venv/conda env instead)"
	@echo "make lock     re-pin requirements.lock after editing pyproject.toml's dependencies"
	@echo "make test-python VERSION=3.13  notebooks and homework checks under another Python"
	@echo "make outputs  re-execute the lecture notebooks in place (spawn)"
	@echo "make lint     ruff over code and notebooks"
	@echo "make grade ASSIGNMENT=hw1   autograde all submissions (parallel, sandboxed)"
	@echo "make release  regenerate release/ (student versions) from source/ with nbgrader"

env: $(STAMP)

# Installs from requirements.lock (scripts/make-env.sh: uv, or pip where uv
# cannot be installed; INSTALLER=pip forces pip), and again only when the lock or
# the package metadata change, so a second `make lab` starts in seconds.
$(STAMP): requirements.lock pyproject.toml
	@scripts/make-env.sh "$(ENV_DIR)" "$(PYTHON)"
	$(BIN)/jupyter labextension list 2>&1 | grep -q "nbgrader.*enabled" \
	  || { echo "error: nbgrader's JupyterLab extensions are not enabled" >&2; exit 1; }
	@touch $@

# Re-pin requirements.lock after editing the dependencies in pyproject.toml: keeps
# the locked versions that still fit; UPGRADE=1 moves everything to the newest.
lock:
	@test -x $(BIN)/python || scripts/make-env.sh "$(ENV_DIR)" "$(PYTHON)"
	scripts/lock.sh $(BIN)/python $(if $(UPGRADE),--upgrade)

# nbgrader's formgrader reads ./nbgrader_config.py, so JupyterLab runs from the course root.
lab: env
	cd "$(CURDIR)" && $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --ip=127.0.0.1 \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

lint: env
	$(BIN)/ruff check .

# PostgreSQL's server binaries for tests/test_grade_postgres.py, only where it
# runs (scripts/ensure-postgres.sh): CI installs them, a user is told the command.
# One session runs every test under all three start methods (--start-methods,
# tests/plugins/start_methods.py), so xdist spreads all of them over its
# workers. Five workers on two cores: some tests wait (kernels starting, deadlocks
# running into their time limits). tests/conftest.py makes each slow(seconds) test
# a unit of its own and the rest of each file one unit, longest first;
# --no-loadscope-reorder keeps that order (by default xdist sorts the units by
# their number of tests, and the one-test files of the round trips started last).
# MP_START_METHOD=fork $(PYTEST) tests  still runs them under one method.
UNIT_DIST := --dist loadgroup --no-loadscope-reorder
test-unit: env
	@scripts/ensure-postgres.sh $(BIN)/python
	$(PYTEST) -q -n 5 $(UNIT_DIST) --durations=20 tests --ignore=tests/browser --start-methods=$(START_METHODS)

# Every lecture notebook under every start method (00-review.ipynb::fork, ...; the three of one notebook on one worker, since they share its %%writefile modules),
# strict output comparison.
test-notebooks: env
	$(PYTEST) -q -n 3 --dist loadfile $(NBVAL) --start-methods=$(START_METHODS) $(NOTEBOOKS)

# The course in real JupyterLab, driven in headless Chromium (Debian's package,
# with a CJK font for the Chinese text: CI installs them, a user is told the command).
# Screenshots of each step: tests/browser/screenshots/.
test-browser: env
	scripts/ensure-debian-packages.sh chromium fonts-wqy-microhei
	$(PYTEST) -q tests/browser

# Another Python (make test-python VERSION=3.13): the lecture notebooks (strict)
# and the homework checks, under every start method, in .venv-3.13 built from
# the same lock with that Python (scripts/find-python.sh 3.13: system or pyenv).
# The notebooks run from a copy in build/, so their %%writefile modules never
# collide with those of a test-notebooks run at the same time.
VERSION ?= 3.13
PY_START_METHODS ?= $(START_METHODS)
PY_WORKERS ?= 3
PY_NOTEBOOKS := build/notebooks-$(VERSION)
test-python: .venv-$(VERSION)/.mp-course-installed
	@rm -rf $(PY_NOTEBOOKS) && mkdir -p $(PY_NOTEBOOKS) && cp $(NOTEBOOKS) $(PY_NOTEBOOKS)/
	PATH="$(CURDIR)/.venv-$(VERSION)/bin:$$PATH" .venv-$(VERSION)/bin/python -m pytest -q \
	  -n $(PY_WORKERS) --dist loadfile $(NBVAL) --start-methods=$(PY_START_METHODS) \
	  tests/test_hw_checks.py $(addprefix $(PY_NOTEBOOKS)/,$(notdir $(NOTEBOOKS)))

.venv-%/.mp-course-installed: requirements.lock pyproject.toml
	@py=$$(scripts/find-python.sh $*) || { echo "error: no Python $* here: install it (pyenv install $*, or your system's python$*)" >&2; exit 1; }; \
	  scripts/make-env.sh "$(CURDIR)/.venv-$*" "$$py"
	@touch $@

# Three steps, on 2 cores:
# 1. .venv (and .venv-$(CI_PYTHON), where that Python is installed) built side by side;
# 2. ruff, then the unit tests beside the Python $(CI_PYTHON) stage (test-python: its
#    notebooks' forkserver run and the homework checks). The unit stage starts with
#    its longest tests, the round trips and the grader's limits, which mostly wait
#    (kernels, deadlocks running into their limits): the other stage uses the idle core;
# 3. the notebooks under .venv's Python (spawn and fork) beside the browser test,
#    which mostly waits on JupyterLab and Chromium.
# Each one's output is printed when it ends. Every notebook still runs under three
# methods, and both Pythons are checked. Without Python $(CI_PYTHON), step 3 runs
# the notebooks under all three methods.
CI_PYTHON := 3.13
test:
	@if [ -n "$(CI_PYTHON)" ] && scripts/find-python.sh $(CI_PYTHON) >/dev/null; then \
	  $(MAKE) --no-print-directory -j2 env .venv-$(CI_PYTHON)/.mp-course-installed \
	  && $(MAKE) --no-print-directory lint \
	  && $(MAKE) --no-print-directory -j2 $(OUTPUT_SYNC) test-unit test-python \
	    VERSION=$(CI_PYTHON) PY_START_METHODS=forkserver PY_WORKERS=2 \
	  && $(MAKE) --no-print-directory -j2 $(OUTPUT_SYNC) test-notebooks test-browser \
	    START_METHODS=spawn,fork; \
	else \
	  echo "note: no Python $(CI_PYTHON) here (make test-python): the notebooks run under .venv's Python only"; \
	  $(MAKE) --no-print-directory env lint test-unit \
	  && $(MAKE) --no-print-directory -j2 $(OUTPUT_SYNC) test-notebooks test-browser; \
	fi

outputs: env
	MP_START_METHOD=spawn $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=300 $(NOTEBOOKS)

# Grade every submission of an assignment: parallel, sandboxed, bounded, resumable
# (see course_tools/grade). Options: WORKERS=n FORCE=1 LMS=export.zip ROSTER=students.csv NO_SANDBOX=1,
# anything else through GRADE_ARGS (course-grade --help).
grade: env
	@test -n "$(ASSIGNMENT)" || { echo "usage: make grade ASSIGNMENT=hw1 [WORKERS=n] [FORCE=1] [LMS=export.zip] [ROSTER=students.csv] [NO_SANDBOX=1] [SCHEDULER=tcp://host:8786]" >&2; exit 2; }
	$(BIN)/course-grade $(ASSIGNMENT) --course "$(CURDIR)" $(if $(WORKERS),--workers $(WORKERS)) \
	  $(if $(FORCE),--force) $(if $(LMS),--lms "$(LMS)") $(if $(NO_SANDBOX),--no-sandbox) $(if $(ROSTER),--roster "$(ROSTER)") $(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(GRADE_ARGS)

# Student versions of the homework: release/<hw>/ regenerated from source/<hw>/
# (solutions and hidden tests stripped). Commit the result; tests check it is current.
HOMEWORK := $(notdir $(wildcard source/hw*))
release: env
	@for a in $(HOMEWORK); do \
	  $(BIN)/nbgrader generate_assignment $$a --force --log-level=WARN || exit 1; done
	@git status --short release/

clean:
	rm -rf .venv .venv-3.* build/notebooks-3.* .pytest_cache .ruff_cache *.egg-info
