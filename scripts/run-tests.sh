#!/usr/bin/env bash
# The whole test suite, stage by stage, with the time each takes. Run through `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/stage.sh

stage "lint" scripts/lint.sh
stage "pytest" python -m pytest -n 2 --dist loadfile
stages_summary
