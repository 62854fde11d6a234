"""Cluster mode, the entry: what only a real gateway (or ingress controller) shows.

Through the Gateway API (the scenarios whose entry is the gateway: full, ephemeral, projects-only), via a
port-forward to the Envoy proxy of the release's Gateway (README's Quick start does the same):
  - the controller accepted every HTTPRoute (Accepted, ResolvedRefs) and every policy (Accepted);
  - with tokens required: no token -> 401 from the gateway (its SecurityPolicy), a token from auth (through the
    gateway too: the token endpoint is open) -> 200;
  - a burst over a service's rate limit, from a pod inside the cluster, gets 429 from the gateway.
Through the Ingress (users-only, whose scenario takes atlas_entry: ingress: molecule/shared/scenarios.yml): the
ingress controller routes the API by host name (a port-forward to the controller, the Host header set).
Runs only where a cluster is (make molecule-cluster); render mode skips them with the reason.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid

import pytest
import yaml
from atlas_profiles import CHART, ISSUER, SERVICES
from kube import Cluster, Tokens
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from tests.provisioning.ansible_run import REPO_ROOT
from tests.support.chart import NAMESPACE, RELEASE
from tests.support.postgres import wait_until

pytestmark = pytest.mark.cluster

# The test inventory's host and the gateway's namespace (group_vars: atlas_entry_host, atlas_gateway_defaults).
HOST = "atlas-test.local"
GATEWAY_NAMESPACE = "envoy-gateway-system"
INGRESS_NAMESPACE = "ingress-nginx"  # Minikube's ingress addon
with open(f"{REPO_ROOT}/group_vars/all/services.yml") as _fh:
    LIMITS = {s: (v or {}).get("rateLimit", {}) for s, v in yaml.safe_load(_fh)["atlas_services"].items()}


@pytest.fixture(scope="module")
def cluster(mode) -> Cluster:
    return Cluster(mode)


@pytest.fixture(scope="module")
def tokens(cluster, profile) -> Tokens | None:
    if ISSUER not in profile.services:
        return None
    return Tokens(cluster, ISSUER, [f"{s}:{a}" for s in SERVICES if s != ISSUER for a in ("read", "write")])


@pytest.fixture(scope="module")
def envoy(cluster, profile):
    """The Envoy proxy serving the release's Gateway: (pod name, container port of the HTTP listener)."""
    if profile.entry != "gateway":
        pytest.skip(f"scenario {profile.name} takes the Ingress (molecule/shared/scenarios.yml)")
    selector = ",".join(
        (
            f"gateway.envoyproxy.io/owning-gateway-namespace={NAMESPACE}",
            f"gateway.envoyproxy.io/owning-gateway-name={RELEASE}",
        )
    )
    found = []

    def ready() -> bool:
        pods = cluster.core.list_namespaced_pod(GATEWAY_NAMESPACE, label_selector=selector).items
        found[:] = [p for p in pods if Cluster.is_ready(p)]
        return bool(found)

    wait_until(ready, timeout=300, interval=3)
    (service,) = cluster.core.list_namespaced_service(GATEWAY_NAMESPACE, label_selector=selector).items
    (port,) = [p for p in service.spec.ports if p.port == CHART["gateway"]["port"]]
    return found[0].metadata.name, int(port.target_port), service.metadata.name


def _through_gateway(
    cluster: Cluster, envoy, method: str, path: str, token: str | None = None, body=None, headers=None
):
    pod, port, _ = envoy
    headers = {"Host": HOST, **(headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return cluster.forward(pod, GATEWAY_NAMESPACE, port, method, path, body, headers)


def test_the_gateway_accepted_the_routes_and_policies(cluster, profile, envoy):
    custom = k8s.CustomObjectsApi(cluster.core.api_client)
    kinds = [("gateway.networking.k8s.io", "v1", "httproutes", "parents", ("Accepted", "ResolvedRefs"))]
    for plural in ("securitypolicies", "backendtrafficpolicies"):
        kinds.append(("gateway.envoyproxy.io", "v1alpha1", plural, "ancestors", ("Accepted",)))
    for group, version, plural, field, wanted in kinds:
        items = custom.list_namespaced_custom_object(group, version, NAMESPACE, plural)["items"]
        for item in items:
            entries = (item.get("status") or {}).get(field) or []
            assert entries, f"{plural}/{item['metadata']['name']}: no status from the gateway"
            for entry in entries:
                found = {c["type"]: c["status"] for c in entry.get("conditions", [])}
                assert all(found.get(c) == "True" for c in wanted), (plural, item["metadata"]["name"], entry)
    routes = custom.list_namespaced_custom_object("gateway.networking.k8s.io", "v1", NAMESPACE, "httproutes")["items"]
    assert {r["metadata"]["name"] for r in routes} == {f"{RELEASE}-{s}" for s in profile.services}


def test_the_gateway_asks_for_a_token_and_lets_one_through(cluster, profile, envoy, tokens):
    if not profile.tokens_required:
        for service in profile.apis:
            assert _through_gateway(cluster, envoy, "GET", f"/api/v1/{service}").status == 200
        return
    # The token endpoint is open at the gateway (no SecurityPolicy on the issuer's route).
    client = tokens.client()
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    reply = _through_gateway(
        cluster, envoy, "POST", "/oauth/token", body=b"grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert reply.status == 200, reply.body
    token = reply.body["access_token"]
    for service in profile.checked:
        # Envoy's jwt_authn answers before the request reaches the pod: 401 (and no X-Authentication header,
        # which only the services set).
        refused = _through_gateway(cluster, envoy, "GET", f"/api/v1/{service}")
        assert refused.status == 401, (service, refused.status, refused.body)
        assert "x-authentication" not in refused.headers, "the service answered, not the gateway"
        forged = _through_gateway(cluster, envoy, "GET", f"/api/v1/{service}", token=token[:-4] + "AAAA")
        assert forged.status == 401, service
        allowed = _through_gateway(cluster, envoy, "GET", f"/api/v1/{service}", token=token)
        assert allowed.status == 200, (service, allowed.status, allowed.body)
        assert allowed.headers.get("x-authentication") == "required"


# Requests from inside the cluster (a pod in a namespace of its own, which no NetworkPolicy of Atlas' covers), many
# at once on kept-alive connections: what a port-forward cannot send fast enough. Prints {status: count}.
BURST = """
import http.client, json, sys, threading
host, vhost, path, token = sys.argv[1], sys.argv[3], sys.argv[4], sys.argv[5]
port, total = int(sys.argv[2]), int(sys.argv[6])
counts, lock = {}, threading.Lock()
def worker(n):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    for _ in range(n):
        headers = {'Host': vhost, **({'Authorization': 'Bearer ' + token} if token else {})}
        try:
            conn.request('GET', path, headers=headers)
            response = conn.getresponse(); response.read(); status = response.status
        except Exception:
            conn.close(); conn = http.client.HTTPConnection(host, port, timeout=10); status = 0
        with lock:
            counts[status] = counts.get(status, 0) + 1
threads = [threading.Thread(target=worker, args=(total // 20,)) for _ in range(20)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(counts))
"""


def test_a_burst_over_the_rate_limit_gets_429(cluster, profile, envoy, tokens):
    service = next(s for s in profile.apis if LIMITS.get(s, {}).get("enabled"))
    limit = LIMITS[service]
    assert limit["unit"] == "Second", "the burst is sized for a per-second limit"
    image = (
        cluster.apps.read_namespaced_deployment(f"{RELEASE}-{service}", NAMESPACE)
        .spec.template.spec.containers[0]
        .image
    )
    namespace, name = f"atlas-burst-{uuid.uuid4().hex[:6]}", "burst"
    restricted = {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip
    cluster.core.create_namespace({"metadata": {"name": namespace}})
    try:
        cluster.core.create_namespaced_pod(namespace, {
            "metadata": {"name": name},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
                "containers": [{
                    "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", "import time; time.sleep(3600)"], "securityContext": restricted,
                    "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
                }],
            },
        })  # fmt: skip
        wait_until(lambda: cluster.core.read_namespaced_pod(name, namespace).status.phase == "Running", 180, 2)
        _, _, envoy_service = envoy
        host = f"{envoy_service}.{GATEWAY_NAMESPACE}.svc"
        token = tokens.get() if profile.tokens_required else ""
        total = limit["requests"] * 5  # five seconds' worth, sent as fast as 20 connections go
        rc, out, err = _exec_in(cluster, namespace, name, ["python", "-c", BURST, host, str(CHART["gateway"]["port"]),
                                                            HOST, f"/api/v1/{service}", token, str(total)])  # fmt: skip
        assert rc == 0, err
        counts = {int(k): v for k, v in json.loads(out).items()}
        assert counts.get(429, 0) > 0, f"{service}: no 429 in {counts} (limit {limit})"
        assert counts.get(200, 0) >= limit["requests"], f"{service}: fewer than the limit got through: {counts}"
    finally:
        with contextlib.suppress(ApiException):
            cluster.core.delete_namespace(namespace)


def _exec_in(cluster: Cluster, namespace: str, pod: str, command: list[str]) -> tuple[int, str, str]:
    ws = stream(
        cluster.core.connect_get_namespaced_pod_exec, pod, namespace, container=pod, command=command,
        stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False,
    )  # fmt: skip
    ws.run_forever(timeout=180)
    out, err, code = ws.read_stdout(), ws.read_stderr(), ws.returncode
    ws.close()
    return code, out, err


def test_the_ingress_routes_the_api_by_host(cluster, profile):
    if profile.entry != "ingress":
        pytest.skip(f"scenario {profile.name} takes the Gateway API")
    selector = "app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller"
    found = []

    def ready() -> bool:
        found[:] = [p for p in cluster.core.list_namespaced_pod(INGRESS_NAMESPACE, label_selector=selector).items
                    if Cluster.is_ready(p)]  # fmt: skip
        return bool(found)

    wait_until(ready, timeout=300, interval=3)
    for service in profile.apis:
        reply = cluster.forward(
            found[0].metadata.name, INGRESS_NAMESPACE, 80, "GET", f"/api/v1/{service}", headers={"Host": HOST}
        )
        assert reply.status == 200, (service, reply.status, reply.body)
    # Another host is not Atlas'.
    other = cluster.forward(
        found[0].metadata.name, INGRESS_NAMESPACE, 80, "GET", "/api/v1/users", headers={"Host": "elsewhere.local"}
    )
    assert other.status == 404
