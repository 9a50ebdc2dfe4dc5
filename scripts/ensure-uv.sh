#!/usr/bin/env bash
# Put uv (pinned, from PyPI) into the environment of the given Python, unless it
# is there at that version. Exit 1 when it cannot be installed (no wheel for this
# platform, no network): callers then fall back to pip.
# Usage: scripts/ensure-uv.sh PYTHON
set -euo pipefail
UV_VERSION=0.13.9
py=$1
[ "$("$py" -m uv --version 2>/dev/null)" = "uv $UV_VERSION" ] && exit 0
# A venv from a Python without pip (--without-pip, some distributions) can still
# get one from ensurepip.
"$py" -m pip --version >/dev/null 2>&1 || "$py" -m ensurepip --default-pip >/dev/null 2>&1 || exit 1
"$py" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >/dev/null 2>&1
