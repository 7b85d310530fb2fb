#!/usr/bin/env bash
# Make .venv fit for one purpose: `scripts/venv.sh local|dev|bench` installs
# requirements-<purpose>.txt. Refuses a Python older than 3.11 with one line,
# rebuilds a .venv that another interpreter made, and installs again only
# when the requirement files changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
purpose=${1:?usage: scripts/venv.sh local|dev|bench}
requirements=requirements-$purpose.txt

version=$("$PYTHON" -c 'import sys; print(sys.version)' 2>/dev/null) || {
  echo "error: '$PYTHON' was not found; install Python 3.11 or newer (or run make PYTHON=/path/to/python3.11)" >&2
  exit 1
}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python 3.11 or newer is needed; $PYTHON is ${version%% *} (run make PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [[ -e $VENV ]] && [[ $("$VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null || true) != "$version" ]]; then
  echo "rebuilding $VENV: it was made by another Python than $PYTHON (${version%% *})"
  rm -rf "$VENV"
fi
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"

# The stamp holds a digest of every requirements file this purpose reads.
files=$(ls requirements*.txt)
digest=$(cat $files | sha256sum | cut -c1-16)
stamp=$VENV/.installed-$purpose
[[ -f $stamp && $(cat "$stamp") == "$digest" ]] && exit 0
echo "installing $requirements into $VENV"
log=$(mktemp)
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -r "$requirements" >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"; exit 1
fi
rm -f "$log"
echo "$digest" >"$stamp"
