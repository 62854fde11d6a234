#!/usr/bin/env bash
# The whole test suite, stage by stage, with the time each takes. Run through `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/stage.sh

stage "lint" scripts/lint.sh
stage "pytest" python -m pytest -n 2 --dist loadfile
# Render mode unless asked otherwise: a Docker engine on the machine must not turn `make test` into a cluster run
# (that is `make molecule-cluster`).
# With PATH as a user who only activated the venv has it: what the Makefile put in front of it (.tools/bin,
# the tools role's directory) taken out again, so README's `molecule test -s <profile>` line is what runs.
molecule_path=$(tr ':' '\n' <<<"$PATH" | grep -v -x -e "$PWD/.tools/bin" -e "${ATLAS_TOOLS_BIN_DIR:-}" | paste -sd:)
stage "molecule" env PATH="$molecule_path" MOLECULE_MODE="${MOLECULE_MODE:-render}" molecule test --all
stages_summary
