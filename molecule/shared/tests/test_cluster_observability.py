"""Cluster mode, the monitoring stack (scenario full, whose profile turns it on): what only a real cluster shows.

After converge (site.yml: the stack's three releases, then Atlas with its ServiceMonitors, PrometheusRule and
dashboards), through the Kubernetes API and port-forwards to the stack's own pods:
  - Prometheus has every Atlas target (each service, each database exporter) up;
  - Prometheus has loaded the Atlas rules (the operator writes them as <namespace>-<name>-<uid>.yaml: recalled
    from prometheus-operator's rule ConfigMaps, not re-read);
  - Grafana, logged in with the generated admin password, lists every Atlas dashboard and has the Loki datasource;
  - Loki holds log lines from an Atlas pod, shipped by Alloy.
The other scenarios have no stack: these tests are skipped there, saying so. Runs only where a cluster is
(make molecule-cluster); render mode skips them with the reason.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse
from pathlib import Path

import pytest
from kube import Cluster
from kubernetes.stream import portforward

from tests.provisioning.ansible_run import REPO_ROOT as REPO
from tests.support.chart import NAMESPACE, RELEASE
from tests.support.postgres import wait_until

REPO_ROOT = Path(REPO)

pytestmark = pytest.mark.cluster

STACK_NAMESPACE = "monitoring"  # atlas_observability_defaults.namespace
# What the Atlas chart's ServiceMonitors make: the operator names each job after the Service it selects.
ATLAS_JOBS = {f"{RELEASE}-{s}" for s in ("users", "projects")} | {
    f"{RELEASE}-{s}-postgresql" for s in ("users", "projects")
}


@pytest.fixture(scope="module")
def cluster(mode, profile) -> Cluster:
    if not profile.observability:
        pytest.skip(f"profile {profile.name} has no monitoring stack (atlas_profiles.{profile.name}.observability)")
    return Cluster(mode)


def _pod(cluster: Cluster, selector: str):
    """A Ready pod of the stack, by label selector, waiting for one."""
    found = []

    def look() -> bool:
        pods = cluster.core.list_namespaced_pod(STACK_NAMESPACE, label_selector=selector).items
        found[:] = [p for p in pods if Cluster.is_ready(p)]
        return bool(found)

    wait_until(look, timeout=300, interval=3)
    return found[0]


def _get(cluster: Cluster, selector: str, port: int, path: str, auth: tuple[str, str] | None = None) -> object:
    """GET path on a stack pod's port through a port-forward; the answer's JSON."""
    pod = _pod(cluster, selector)
    forward = portforward(
        cluster.core.connect_get_namespaced_pod_portforward, pod.metadata.name, STACK_NAMESPACE, ports=str(port)
    )
    conn = http.client.HTTPConnection("localhost", port, timeout=30)
    conn.sock = forward.socket(port)
    conn.sock.settimeout(30)
    try:
        headers = {"Connection": "close", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, (path, response.status, body[:500])
        return json.loads(body)
    finally:
        conn.close()
        forward.close()


def _eventually(check, timeout: float = 300, interval: float = 10):
    """check() returns (done, detail); retry until done, else fail with the last detail."""
    deadline, detail = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        done, detail = check()
        if done:
            return detail
        time.sleep(interval)
    pytest.fail(f"not within {timeout:.0f}s: {detail}")


PROMETHEUS = "app.kubernetes.io/name=prometheus"
GRAFANA = "app.kubernetes.io/name=grafana"
LOKI = "app.kubernetes.io/name=loki,app.kubernetes.io/component=single-binary"


def test_prometheus_has_every_atlas_target_up(cluster):
    def check():
        targets = _get(cluster, PROMETHEUS, 9090, "/api/v1/targets?state=active")["data"]["activeTargets"]
        atlas = [t for t in targets if t["labels"].get("namespace") == NAMESPACE]
        health = {}
        for t in atlas:
            health.setdefault(t["labels"]["job"], set()).add(t["health"])
        up = {job for job, states in health.items() if states == {"up"}}
        return up >= ATLAS_JOBS, health

    _eventually(check)


def test_prometheus_loaded_the_atlas_rules(cluster):
    def check():
        groups = _get(cluster, PROMETHEUS, 9090, "/api/v1/rules")["data"]["groups"]
        atlas = [g for g in groups if f"/{NAMESPACE}-{RELEASE}-metrics-" in g["file"]]
        rules = [r for g in atlas for r in g["rules"]]
        return bool(rules) and all(r.get("health") in ("ok", "unknown") for r in rules), [g["file"] for g in groups]

    _eventually(check, timeout=180)


def _grafana_auth(cluster: Cluster) -> tuple[str, str]:
    secret = cluster.core.read_namespaced_secret("grafana-admin", STACK_NAMESPACE)
    return tuple(base64.b64decode(secret.data[k]).decode() for k in ("admin-user", "admin-password"))


def test_grafana_lists_the_atlas_dashboards_and_has_loki(cluster):
    expected = set()
    for cm in cluster.core.list_namespaced_config_map(NAMESPACE, label_selector="grafana_dashboard=1").items:
        for text in cm.data.values():
            expected.add(json.loads(text)["uid"])
    assert expected, "the chart rendered no dashboard ConfigMaps"
    auth = _grafana_auth(cluster)

    def check():
        found = {d["uid"] for d in _get(cluster, GRAFANA, 3000, "/api/search?type=dash-db", auth=auth)}
        return expected <= found, sorted(expected - found)

    _eventually(check, timeout=180)
    sources = {d["uid"]: d["type"] for d in _get(cluster, GRAFANA, 3000, "/api/datasources", auth=auth)}
    assert sources.get("loki") == "loki" and sources.get("prometheus") == "prometheus", sources


def test_grafana_password_is_the_generated_one(cluster):
    # The scenarios run the test inventory (atlas_env test): .credentials/test/, created on the first converge.
    stored = REPO_ROOT / ".credentials" / "test" / "grafana-admin"
    assert stored.exists(), stored
    assert _grafana_auth(cluster) == ("admin", stored.read_text().strip())


def test_loki_has_log_lines_from_an_atlas_pod(cluster):
    # A request that logs (the services log each request as one JSON line); startup lines are there anyway.
    cluster.http("users", "GET", "/readyz")
    query = urllib.parse.urlencode(
        {
            "query": f'{{namespace="{NAMESPACE}", service_name="users"}}',
            "limit": "20",
            "start": str(int((time.time() - 3600) * 1e9)),
        }
    )

    def check():
        streams = _get(cluster, LOKI, 3100, f"/loki/api/v1/query_range?{query}")["data"]["result"]
        lines = [line for s in streams for _, line in s["values"]]
        return bool(lines), [s["stream"] for s in streams]

    _eventually(check)
