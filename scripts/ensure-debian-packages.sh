#!/usr/bin/env bash
# Install the named Debian packages if any is missing, so that `make test` works
# on a fresh machine with nothing installed by hand. Needs root (CI and these
# machines run as root); elsewhere it fails loudly with the command to run.
# Usage: scripts/ensure-debian-packages.sh PACKAGE...
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: need Debian packages ${missing[*]} and apt-get is not available; install them by other means" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "error: need Debian packages ${missing[*]}: run  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
# apt-get update can hit a stale mirror list; one retry, then let install report.
apt-get update -qq || apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
