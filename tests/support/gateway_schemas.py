"""Validate rendered Gateway API and Envoy Gateway objects against their published schemas, offline.

The schemas come from npm (@kubernetes-models/gateway-api 2.0.0 = Gateway API v1.5.1,
@kubernetes-models/envoy-gateway 2.0.0 = Envoy Gateway v1.7.3; ajv validators generated from the CRDs'
Go types), installed by `scripts/install-tools.sh gateway-api-schemas` (`make setup`) from the lockfile in
tests/support/gateway_api/. They check required fields, enums, patterns and bounds; not the CRDs' CEL rules
and not unknown fields, which tests/chart/test_gateway.py checks itself for the fields the chart writes.
They are older than what roles/gateway installs (Envoy Gateway v1.9.0, bundling the Gateway API v1.6.1 CRDs):
npm has nothing newer, and the CRDs themselves are only on GitHub. The chart writes only v1 Gateway API fields and
v1alpha1 policy fields present in both; that the installed controller accepts them is a cluster-mode check
(molecule/shared/tests/test_cluster_gateway.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VALIDATOR = os.path.join(ROOT, ".tools", "gateway-api", "validate.mjs")
API_GROUPS = ("gateway.networking.k8s.io/", "gateway.envoyproxy.io/")


def missing() -> str | None:
    """Why the validators cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.path.exists(VALIDATOR):
        return "run scripts/install-tools.sh gateway-api-schemas (make setup)"
    return None


def validate(objects: Iterable[dict]) -> list[dict]:
    """One result per object: {kind, name, known, ok, errors}; known False for a kind with no schema."""
    objects = list(objects)
    if not objects:
        return []
    why = missing()
    if why:
        raise RuntimeError(f"Gateway API schemas unavailable: {why}")
    done = subprocess.run(
        ["node", VALIDATOR], input=json.dumps(objects), capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode not in (0, 1) or not done.stdout:
        raise RuntimeError(f"the validator failed ({done.returncode}): {done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines()]


def gateway_objects(manifests: Iterable[dict]) -> list[dict]:
    return [m for m in manifests if m["apiVersion"].startswith(API_GROUPS)]
