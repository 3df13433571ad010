#!/usr/bin/env bash
# Checks for Python >= 3.11 with venv/ensurepip; installs python3-venv on Debian when missing.
set -euo pipefail
py="${1:-python3}"
here=$(dirname "$0")
if ! command -v "$py" >/dev/null 2>&1; then
  bash "$here/ensure-apt.sh" python3 python3-venv
fi
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "tiaojie: needs Python 3.11 or newer; $py is $("$py" --version 2>&1)." >&2
  exit 1
fi
if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  bash "$here/ensure-apt.sh" "python${ver}-venv"
fi
