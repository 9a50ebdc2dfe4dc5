#!/usr/bin/env bash
# PostgreSQL's server binaries, for tests/test_grade_postgres.py, which starts its
# own server. That test runs only where the grading sandbox works, so elsewhere
# (macOS, a non-root user) nothing is needed and nothing is installed.
# Usage: scripts/ensure-postgres.sh PYTHON   (the environment the tests run in)
set -euo pipefail
cd "$(dirname "$0")/.."
py=$1
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
command -v initdb >/dev/null 2>&1 && exit 0
# The sandbox probe takes seconds (it starts a Python as another user): only now.
"$py" - <<'PY' || exit 0
import sys
try:
    from course_tools.grade.sandbox import probe
except ImportError:  # cannot tell: assume the test runs
    sys.exit(0)
sys.exit(probe() is not None)
PY
exec scripts/ensure-debian-packages.sh postgresql
