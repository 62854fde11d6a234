#!/usr/bin/env bash
# The whole test suite, stage by stage, with the time each takes. Run through `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/stage.sh

stage "lint" scripts/lint.sh
stage "pytest" python -m pytest -n 2 --dist loadfile
# Render mode unless asked otherwise: a Docker engine on the machine must not turn `make test` into a cluster run
# (that is `make molecule-cluster`).
stage "molecule" env MOLECULE_MODE="${MOLECULE_MODE:-render}" molecule test --all
stages_summary
