"""checkov finds no failed check in any rendered manifest; skips live in charts/atlas/.checkov.yaml,
each with its reason.

One scan covers the whole toggle matrix and every test values file, plus a deliberately insecure
canary pod that must fail, so the scan is shown to be able to fail.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess

import pytest
import yaml

from tests.chart.matrix import COMBOS
from tests.support.chart import REPO_ROOT, template_raw

SCRIPT = os.path.join(REPO_ROOT, "scripts", "checkov.sh")
SKIP_FILE = os.path.join(REPO_ROOT, "charts", "atlas", ".checkov.yaml")
VALUES_FILES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "values", "*.yaml")))

CANARY = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "insecure-canary", "namespace": "atlas"},
    "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}]},
}


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("rendered")
    for combo in COMBOS:
        if combo.enabled:
            (out / f"{combo.id}.yaml").write_text(template_raw(combo.values()))
    for path in VALUES_FILES:
        (out / os.path.basename(path)).write_text(template_raw(values_files=[path]))
    (out / "canary.yaml").write_text(yaml.safe_dump(CANARY))
    proc = subprocess.run(
        [SCRIPT, str(out), "--output", "json"], capture_output=True, text=True, timeout=900, check=False
    )
    # checkov exits 1 when any check failed (the canary's); anything else is a broken run.
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.mark.slow
def test_no_check_fails_on_rendered_manifests(scan: dict) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in scan["results"]["failed_checks"]
        if "insecure-canary" not in c["resource"]
    ]
    assert failed == []
    assert scan["summary"]["passed"] > 500
    assert scan["summary"]["parsing_errors"] == 0


@pytest.mark.slow
def test_scan_can_fail(scan: dict) -> None:
    canary = {c["check_id"] for c in scan["results"]["failed_checks"] if "insecure-canary" in c["resource"]}
    # privileged container, no read-only root filesystem, no resource limits
    assert {"CKV_K8S_16", "CKV_K8S_22", "CKV_K8S_11"} <= canary


def test_every_skipped_check_has_a_reason() -> None:
    with open(SKIP_FILE) as f:
        text = f.read()
    skipped = yaml.safe_load(text)["skip-check"]
    assert skipped, "no skipped checks listed"
    lines = text.splitlines()
    for check in skipped:
        index = next(i for i, line in enumerate(lines) if re.fullmatch(rf"\s*- {check}\s*", line))
        # The reason is the comment block right above the entry (entries may share one).
        above = [line.strip() for line in lines[:index] if line.strip()]
        while above and re.fullmatch(r"- CKV\w+", above[-1]):
            above.pop()
        assert above and above[-1].startswith("#"), f"{check} has no reason comment"
