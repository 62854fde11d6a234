#!/usr/bin/env bash
# Security scan of rendered Kubernetes manifests with checkov, in its own virtualenv (.venv-checkov):
# checkov pins versions that conflict with the ansible venv, so it never shares .venv.
#   scripts/checkov.sh --install-only        create/refresh .venv-checkov and exit
#   scripts/checkov.sh DIR [checkov args]    scan every manifest under DIR (skips: charts/atlas/.checkov.yaml)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-checkov"
CHECKOV_VERSION="3.3.30"

if [ ! -x "$venv/bin/checkov" ] || ! "$venv/bin/pip" show checkov 2>/dev/null | grep -qx "Version: $CHECKOV_VERSION"; then
  echo "[checkov] installing checkov==$CHECKOV_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "checkov==$CHECKOV_VERSION"
fi

if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi
dir=${1:?usage: scripts/checkov.sh DIR [checkov args]}
shift
# --framework kubernetes: the input is rendered manifests, not the chart source (helm is not needed here).
exec "$venv/bin/checkov" --quiet --compact --framework kubernetes \
  --config-file "$root/charts/atlas/.checkov.yaml" --directory "$dir" "$@"
