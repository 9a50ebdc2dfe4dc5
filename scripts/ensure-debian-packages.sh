#!/usr/bin/env bash
# Make sure the named Debian packages are installed. In CI (CI set, as root) a
# missing one is installed, so `make test` passes on a fresh machine with nothing
# installed by hand; anywhere else this prints the one command to run and fails.
# Usage: scripts/ensure-debian-packages.sh PACKAGE...
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
in_ci() { case "${CI:-}" in "" | 0 | false | no) return 1 ;; esac; }
if ! in_ci || [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "error: the tests need Debian's ${missing[*]}: run  sudo apt-get install -y ${missing[*]}" >&2
  else
    echo "error: the tests need ${missing[*]} (Debian package names): install them with your system's package manager" >&2
  fi
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
# apt-get update can hit a stale mirror list; one retry, then let install report.
apt-get update -qq || apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
