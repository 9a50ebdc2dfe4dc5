#!/usr/bin/env bash
# Regenerate requirements.lock from pyproject.toml's dependencies and extras:
# one lock for every platform and every Python the project supports (uv's
# universal resolution), keeping the versions already locked unless --upgrade
# (or --upgrade-package NAME) is given.
# Usage: scripts/lock.sh PYTHON [uv pip compile options]   (make lock [UPGRADE=1])
#
# Left out on purpose: rfc3987-syntax (and lark, which only it needs). jsonschema's
# "format-nongpl" extra (wanted by jupyter-events) lists it, but it is optional
# there (used only for "iri" formats, which no notebook schema has) and importing
# it builds a grammar: 1.2 s of CPU in every process that imports nbformat (pytest,
# nbgrader, jupyter, every grading worker). scripts/make-env.sh's check allows it.
set -euo pipefail
cd "$(dirname "$0")/.."
py=$1
shift
scripts/ensure-uv.sh "$py" || { echo "error: could not install uv into $py's environment" >&2; exit 1; }
"$py" -m uv pip compile pyproject.toml --extra lab --extra teacher --extra test \
  --universal --python-version 3.11 --custom-compile-command "make lock" \
  --no-emit-package rfc3987-syntax --no-emit-package lark \
  --quiet -o requirements.lock "$@"
