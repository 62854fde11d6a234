#!/usr/bin/env bash
# Every linter the project holds itself to. Run through `make lint` (PATH holds .venv and .tools).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/stage.sh

stage "ruff check" ruff check .
stage "ruff format" ruff format --check .
stage "yamllint" yamllint --strict .
[ -d charts/atlas ] && stage "helm lint" helm lint --strict charts/atlas
[ -d roles ] && stage "ansible-lint" ansible-lint --profile production
stages_summary
