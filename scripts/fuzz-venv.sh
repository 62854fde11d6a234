#!/usr/bin/env bash
# Create (or refresh) .venv-fuzz, the schemathesis virtualenv used by `make fuzz`, from
# evidence/requirements-fuzz.txt. Kept apart from .venv: its dependency pins conflict with ansible's.
# Idempotent: a stamp holding the requirements' hash skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-fuzz
req=evidence/requirements-fuzz.txt
stamp="$venv/.installed"
want=$(sha256sum "$req" | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$req"
echo "$want" >"$stamp"
echo "[fuzz-venv] $("$venv/bin/schemathesis" --version)"
