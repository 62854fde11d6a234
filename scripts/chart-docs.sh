#!/usr/bin/env bash
# The parameters table of charts/atlas/README.md, generated from the `## @param` comments of
# values.yaml by Bitnami's readme-generator (npm, pinned, installed into .tools/, not globally).
#   scripts/chart-docs.sh           rewrite the table in place (`make chart-docs`)
#   scripts/chart-docs.sh --check   exit 1 when the committed table is out of date
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
chart="${CHART_DIR:-$root/charts/atlas}"  # overridable so the tests can check a modified copy
prefix="$root/.tools/readme-generator"
GENERATOR="@bitnami/readme-generator-for-helm@2.7.2"
bin="$prefix/node_modules/.bin/readme-generator"

if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "Version: ${GENERATOR##*@}" ]; then
  command -v npm >/dev/null || { echo "[chart-docs] npm is needed (apt-get install npm)" >&2; exit 1; }
  echo "[chart-docs] installing $GENERATOR into $prefix" >&2
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" "$GENERATOR" >&2
fi

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp "$chart/README.md" "$tmp/README.md"
  "$bin" --values "$chart/values.yaml" --readme "$tmp/README.md" >&2
  if ! diff -u "$chart/README.md" "$tmp/README.md"; then
    echo "[chart-docs] charts/atlas/README.md is out of date: run make chart-docs" >&2
    exit 1
  fi
  echo "[chart-docs] parameters table is up to date" >&2
else
  "$bin" --values "$chart/values.yaml" --readme "$chart/README.md"
fi
