#!/usr/bin/env bash
# Refresh .secrets.baseline after reviewing what tests/security/test_secrets.py reported.
# Scans the same files as the test (tracked, plus new files git does not ignore) in ONE detect-secrets
# call - several calls would each overwrite the baseline with a part - keeping the baseline's settings
# and any audit labels. Then review the result: detect-secrets audit .secrets.baseline
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

mapfile -d '' files < <(git ls-files -z --cached --others --exclude-standard)
existing=()
for f in "${files[@]}"; do
  [ -f "$f" ] && [ "$f" != .secrets.baseline ] && existing+=("$f")
done
detect-secrets scan --baseline .secrets.baseline "${existing[@]}"
python3 -c 'import json,sys; r=json.load(open(".secrets.baseline"))["results"]; print(f"[secrets-baseline] {sum(map(len, r.values()))} reviewed finding(s) in {len(r)} file(s)")'
