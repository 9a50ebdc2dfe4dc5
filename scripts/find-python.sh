#!/usr/bin/env bash
# Print the Python interpreter to build a course environment from; exit 1 when
# there is none. Usage: scripts/find-python.sh [X.Y]
#
# Without X.Y, the first Python >= 3.11 (with venv and ensurepip) of:
#   1. the active virtual or conda environment's (VIRTUAL_ENV, CONDA_PREFIX);
#   2. on Linux, /usr/bin/python3: the grading sandbox runs kernels as an
#      unprivileged user, who cannot read a Python installed under /root (pyenv);
#   3. python3, python3.14 ... python3.11 on PATH. On macOS /usr/bin/python3 is
#      skipped: it is a stub that offers to install the developer tools.
# With X.Y, Python X.Y: /usr/bin/pythonX.Y on Linux, pythonX.Y on PATH, then
# pyenv's newest X.Y.* (a pyenv shim of a version not selected fails and is skipped).
set -uo pipefail
want=${1:-}
here=$(cd "$(dirname "$0")/.." && pwd)
os=$(uname -s)

usable() {
  "$1" -c '
import sys, venv, ensurepip
want = sys.argv[1]
have = sys.version_info[:2]
sys.exit(not (have >= (3, 11) and (not want or have == tuple(map(int, want.split("."))))))
' "$want" >/dev/null 2>&1
}

candidates=()
if [ -z "$want" ]; then
  for env in "${VIRTUAL_ENV:-}" "${CONDA_PREFIX:-}"; do
    case "$env" in "" | "$here"/.venv*) ;; *) candidates+=("$env/bin/python") ;; esac
  done
  [ "$os" = Linux ] && candidates+=(/usr/bin/python3)
  candidates+=(python3 python3.14 python3.13 python3.12 python3.11)
else
  [ "$os" = Linux ] && candidates+=("/usr/bin/python$want")
  candidates+=("python$want")
  if root=$(pyenv root 2>/dev/null); then
    # newest patch release first (POSIX sort: works with macOS's sort too)
    for v in $(cd "$root/versions" 2>/dev/null && printf '%s\n' "$want".* | sort -t. -k3,3nr); do
      candidates+=("$root/versions/$v/bin/python$want")
    done
  fi
fi

for c in "${candidates[@]}"; do
  path=$(command -v "$c" 2>/dev/null) || continue
  [ "$os" = Darwin ] && [ "$path" = /usr/bin/python3 ] && continue
  usable "$path" && { echo "$path"; exit 0; }
done
exit 1
