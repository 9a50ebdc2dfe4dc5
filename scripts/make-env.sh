#!/usr/bin/env bash
# Fill a course environment from requirements.lock: exactly the locked packages,
# then the course's own packages (editable, --no-deps: nothing is resolved beyond
# the lock), then a consistency check. Creates ENV_DIR first when it has no Python.
# Usage: scripts/make-env.sh ENV_DIR [BASE_PYTHON]
# uv installs (several times faster than pip from a clean clone); INSTALLER=pip,
# or a platform where uv cannot be installed, uses pip.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=$1
base=${2:-}
py=$env_dir/bin/python

if [ ! -x "$py" ]; then
  if [ -z "$base" ]; then
    echo "error: no Python >= 3.11 with venv found to create $env_dir: run  make env PYTHON=/path/to/python3" >&2
    exit 1
  fi
  echo "creating $env_dir from $base"
  "$base" -m venv "$env_dir"
  echo "*" > "$env_dir/.gitignore"  # as uv venv does: git never sees it
fi

installer=${INSTALLER:-uv}
if [ "$installer" = uv ] && ! scripts/ensure-uv.sh "$py"; then
  echo "note: uv could not be installed here; installing with pip (slower)" >&2
  installer=pip
fi
if [ "$installer" = uv ]; then
  # uv leaves modules uncompiled: every process would compile its imports again
  # (PYTHONDONTWRITEBYTECODE=1, as in CI, never writes them); pip compiles them itself.
  install=("$py" -m uv pip install --quiet --compile-bytecode --python "$py")
  check=("$py" -m uv pip check --quiet --python "$py")
else
  install=("$py" -m pip install --quiet --disable-pip-version-check)
  check=("$py" -m pip check)
fi
echo "installing requirements.lock and the course's packages into $env_dir ($installer)"
# --no-deps: the lock is the whole transitive set, and resolving again would add
# what scripts/lock.sh leaves out on purpose (rfc3987-syntax: 1.2 s of CPU in every
# process that imports nbformat).
"${install[@]}" --no-deps -r requirements.lock
"${install[@]}" --no-deps -e .
# An editable install leaves the course's own modules uncompiled too: with
# PYTHONDONTWRITEBYTECODE=1 every kernel, grader and lecture worker would compile
# them again at each start.
"$py" -m compileall -q -j 0 helpers hwcheck courselib course_tools >/dev/null
# The course's Jupyter server settings (formgrader shows student notebooks without
# their script): a wheel install puts them there itself, an editable one does not.
mkdir -p "$env_dir/etc/jupyter"
cp jupyter-config/jupyter_server_config.json "$env_dir/etc/jupyter/"
"${check[@]}" >/dev/null || { "${check[@]}" >&2; exit 1; }
