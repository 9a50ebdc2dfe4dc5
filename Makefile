# Two commands do all the set-up (see README.md):
#   make lab    create/refresh .venv, then start JupyterLab on the course
#   make test   create/refresh .venv, then run the whole test suite (CI runs exactly this)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN  := $(CURDIR)/$(VENV)/bin
# nbgrader shells out to tools in the environment's bin/ (alembic, jupyter-*),
# so every target runs with that folder first on PATH.
export PATH := $(BIN):$(PATH)

# Interpreter for the venv: the first Python >= 3.10 found. The system one comes
# first because the grading sandbox runs as an unprivileged user that cannot read
# a Python installed under /root (pyenv).
PYTHON ?= $(shell for p in /usr/bin/python3 python3 python3.13 python3.12 python3.11 python3.10; do \
	  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
	  && { command -v $$p; break; }; done)

STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest
START_METHODS := spawn,forkserver,fork
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: help env lab test test-unit test-notebooks test-browser lint outputs grade release clean

help:
	@echo "make lab      set up .venv and start JupyterLab on the course"
	@echo "make test     set up .venv and run every test (what CI runs)"
	@echo "make test-browser  the course in real JupyterLab in headless Chromium"
	@echo "make env      set up .venv only"
	@echo "make outputs  re-execute the lecture notebooks in place (spawn)"
	@echo "make lint     ruff over code and notebooks"
	@echo "make grade ASSIGNMENT=hw1   autograde all submissions (parallel, sandboxed)"
	@echo "make release  regenerate release/ (student versions) from source/ with nbgrader"

env: $(STAMP)

# Re-installs only when the pinned requirements or the package metadata change,
# so a second `make lab` starts in seconds.
$(STAMP): requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: need Python >= 3.10 with venv (set PYTHON=...)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	$(BIN)/jupyter labextension list 2>&1 | grep -q "nbgrader.*enabled" \
	  || { echo "error: nbgrader's JupyterLab extensions are not enabled" >&2; exit 1; }
	@touch $@

# nbgrader's formgrader reads ./nbgrader_config.py, so JupyterLab runs from the course root.
lab: env
	cd "$(CURDIR)" && $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --ip=127.0.0.1 \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

lint: env
	$(BIN)/ruff check .

# PostgreSQL server binaries: tests/test_grade_postgres.py starts its own server.
# One session runs every test under all three start methods (--start-methods,
# tests/plugins/start_methods.py), so xdist spreads all of them over its
# workers. Four workers on two cores: some tests wait (kernels starting, deadlocks
# running into their time limits); measured 160-175 s, vs 196 s with 3 and 173 s with 5.
# MP_START_METHOD=fork $(PYTEST) tests  still runs them under one method.
test-unit: env
	@scripts/ensure-debian-packages.sh postgresql
	$(PYTEST) -q -n 4 --dist worksteal tests --ignore=tests/browser --start-methods=$(START_METHODS)

# Every lecture notebook under every start method (00-review.ipynb[fork], ...),
# strict output comparison.
test-notebooks: env
	$(PYTEST) -q -p no:cacheprovider -n 3 --dist loadfile \
	  --nbval --nbval-current-env --nbval-cell-timeout=120 \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg --start-methods=$(START_METHODS) $(NOTEBOOKS)

# The course in real JupyterLab, driven in headless Chromium (Debian's package,
# installed here when missing, with a CJK font for the Chinese text).
# Screenshots of each step: tests/browser/screenshots/.
test-browser: env
	scripts/ensure-debian-packages.sh chromium fonts-wqy-microhei
	$(PYTEST) -q -p no:cacheprovider tests/browser

# The unit tests first, alone: the grader's time-limit checks want the cores
# (running them beside the notebooks made those checks flaky on 2 cores). Then
# the notebooks and the browser test side by side, each one's output printed
# when it ends; the browser test mostly waits on JupyterLab and Chromium.
test: env lint test-unit
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-notebooks test-browser

outputs: env
	MP_START_METHOD=spawn $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=300 $(NOTEBOOKS)

# Grade every submission of an assignment: parallel, sandboxed, bounded, resumable
# (see course_tools/grade). Options: WORKERS=n FORCE=1 LMS=export.zip NO_SANDBOX=1,
# anything else through GRADE_ARGS (course-grade --help).
grade: env
	@test -n "$(ASSIGNMENT)" || { echo "usage: make grade ASSIGNMENT=hw1 [WORKERS=n] [FORCE=1] [LMS=export.zip] [NO_SANDBOX=1]" >&2; exit 2; }
	$(BIN)/course-grade $(ASSIGNMENT) --course "$(CURDIR)" $(if $(WORKERS),--workers $(WORKERS)) \
	  $(if $(FORCE),--force) $(if $(LMS),--lms "$(LMS)") $(if $(NO_SANDBOX),--no-sandbox) $(GRADE_ARGS)

# Student versions of the homework: release/<hw>/ regenerated from source/<hw>/
# (solutions and hidden tests stripped). Commit the result; tests check it is current.
HOMEWORK := $(notdir $(wildcard source/hw*))
release: env
	@for a in $(HOMEWORK); do \
	  $(BIN)/nbgrader generate_assignment $$a --force --log-level=WARN || exit 1; done
	@git status --short release/

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
