"""Render mode: the release render.yml wrote for the scenario's profile is the release it must be.

Exactly the expected resources, the persistence shape, the wiring between the services, the entry (the Gateway
API's routes, token checks and rate limits, validated against the published schemas; or the Ingress), restricted
pod security, probes, and the rendered commands run for real against PostgreSQL (the contract).
"""

from __future__ import annotations

import secrets

import pytest
import yaml
from atlas_profiles import CHART, ISSUER, expected_resources
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import gateway_schemas
from tests.support.chart import RELEASE, find, is_hook, of_kind, resource_ids
from tests.support.contract import run_contract
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.render

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Pod")


@pytest.fixture(scope="module")
def manifests(host, build_dir) -> list[dict]:
    rendered = host.file(str(build_dir / "manifests.yaml"))
    assert rendered.exists, f"{rendered.path} is missing: converge (playbooks/render.yml) did not write it"
    return [doc for doc in yaml.safe_load_all(rendered.content_string) if doc]


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server for the contract runs (Debian's binaries, a throwaway data directory)."""
    with PostgresServer().running() as server:
        yield server


def pod_spec(doc: dict) -> dict:
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def all_containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def app_env(manifests: list[dict], service: str) -> dict[str, str]:
    """The service container's environment as Kubernetes assembles it: ConfigMaps first, then env."""
    container = find(manifests, "Deployment", f"{RELEASE}-{service}")["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(find(manifests, "ConfigMap", source["configMapRef"]["name"])["data"])
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", "<from secret>" if "valueFrom" in var else "")
    return env


def test_rendered_files_are_not_world_readable(host, build_dir):
    for name in ("values.yaml", "manifests.yaml"):
        rendered = host.file(str(build_dir / name))
        assert rendered.exists, f"{rendered.path} is missing"
        assert rendered.mode & 0o007 == 0, f"{rendered.path} is mode {oct(rendered.mode)}: other users can read it"


def test_exactly_the_profile_resources_are_rendered(manifests, profile):
    assert resource_ids(manifests) == expected_resources(profile, RELEASE)


def test_no_password_is_rendered(manifests):
    # The playbooks keep passwords in atlas-<service>-db Secrets; the chart must only reference them.
    assert of_kind(manifests, "Secret") == []
    for doc in manifests:
        if doc["kind"] in WORKLOAD_KINDS:
            for container in all_containers(pod_spec(doc)):
                for var in container.get("env", []):
                    # POSTGRES_PASSWORD_FILE is a path, fine; a *PASSWORD with a literal value is not.
                    assert not var["name"].endswith("PASSWORD") or "value" not in var, (
                        f"{doc['kind']}/{doc['metadata']['name']} sets {var['name']} in plain text"
                    )


def test_database_persistence_shape(manifests, profile):
    assert of_kind(manifests, "PersistentVolumeClaim") == []
    for service in profile.services:
        sts = find(manifests, "StatefulSet", f"{RELEASE}-{service}-postgresql")
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"].get("volumes", [])}
        claims = sts["spec"].get("volumeClaimTemplates", [])
        if profile.persistence:
            assert [c["metadata"]["name"] for c in claims] == ["data"], f"{service}: the data must live on a PVC"
            assert claims[0]["spec"]["resources"]["requests"]["storage"]
            assert "data" not in volumes, f"{service}: a pod volume named data would shadow the claim"
        else:
            assert claims == [], f"{service}: the ephemeral profile must not claim PersistentVolumes"
            assert "emptyDir" in volumes["data"], f"{service}: the ephemeral database must live in an emptyDir"


def test_projects_finds_users_only_when_users_is_deployed(manifests, profile):
    if "projects" not in profile.services:
        pytest.skip(f"profile {profile.name} has no projects service")
    env = app_env(manifests, "projects")
    if "users" in profile.services:
        users_svc = find(manifests, "Service", f"{RELEASE}-users")
        port = users_svc["spec"]["ports"][0]["port"]
        assert env.get("USERS_SERVICE_URL") == f"http://{RELEASE}-users:{port}"
    else:
        # Unset switches the owner check off; a URL to a service that is not there would fail every create.
        assert "USERS_SERVICE_URL" not in env


def test_each_service_reaches_its_own_database(manifests, profile):
    for service in profile.services:
        env = app_env(manifests, service)
        assert env["PGHOST"] == f"{RELEASE}-{service}-postgresql"
        assert env["PGDATABASE"] == service
        assert env["PGPASSWORD"] == "<from secret>"


def _paths(service: str) -> list[str]:
    return CHART[service]["entry"]["paths"]


def test_the_entry_routes_exactly_the_enabled_services(manifests, profile):
    if profile.entry == "ingress":
        ingress = find(manifests, "Ingress", RELEASE)
        routes = {
            path["path"]: path["backend"]["service"]["name"]
            for rule in ingress["spec"]["rules"]
            for path in rule["http"]["paths"]
        }
    else:
        routes = {
            match["path"]["value"]: rule["backendRefs"][0]["name"]
            for route in of_kind(manifests, "HTTPRoute")
            for rule in route["spec"]["rules"]
            for match in rule["matches"]
        }
        for route in of_kind(manifests, "HTTPRoute"):
            assert route["spec"]["parentRefs"] == [{"name": RELEASE}]
    assert routes == {path: f"{RELEASE}-{s}" for s in profile.services for path in _paths(s)}


def test_tokens_and_rate_limits_at_the_gateway(manifests, profile):
    if profile.entry != "gateway":
        pytest.skip(f"scenario {profile.name} takes the Ingress: no gateway policies (the services check tokens)")
    checked = {p["spec"]["targetRefs"][0]["name"] for p in of_kind(manifests, "SecurityPolicy")}
    assert checked == {f"{RELEASE}-{s}" for s in profile.checked}
    limited = {p["spec"]["targetRefs"][0]["name"] for p in of_kind(manifests, "BackendTrafficPolicy")}
    assert limited == {f"{RELEASE}-{s}" for s in profile.services}
    # Every Gateway API and Envoy Gateway object is what the CRDs accept (the published schemas).
    if gateway_schemas.missing() is None:
        results = gateway_schemas.validate(gateway_schemas.gateway_objects(manifests))
        assert [r for r in results if not (r["known"] and r["ok"])] == []


def test_the_services_check_tokens_only_where_the_profile_requires_them(manifests, profile):
    for service in profile.apis:
        env = app_env(manifests, service)
        assert ("ATLAS_AUTH_ISSUER" in env) is profile.tokens_required, service


def test_every_pod_runs_restricted(manifests):
    for doc in manifests:
        if doc["kind"] not in WORKLOAD_KINDS:
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        spec = pod_spec(doc)
        pod_ctx = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, f"{where}: mounts a service-account token"
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), f"{where}: shares a host namespace"
        for container in all_containers(spec):
            ctx = container.get("securityContext", {})
            label = f"{where} container {container['name']}"
            assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, f"{label}: may run as root"
            seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", f"{label}: seccomp is {seccomp}"
            assert ctx.get("allowPrivilegeEscalation") is False, f"{label}: may escalate privileges"
            assert ctx.get("readOnlyRootFilesystem") is True, f"{label}: root filesystem is writable"
            assert "ALL" in ctx.get("capabilities", {}).get("drop", []), f"{label}: keeps capabilities"
            assert not ctx.get("capabilities", {}).get("add"), f"{label}: adds capabilities"
            assert not ctx.get("privileged"), f"{label}: is privileged"
            limits = container.get("resources", {}).get("limits", {})
            assert {"cpu", "memory"} <= limits.keys(), f"{label}: no cpu/memory limits"


def test_service_probes_follow_the_interface(manifests, profile):
    for service in profile.services:
        spec = find(manifests, "Deployment", f"{RELEASE}-{service}")["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
        probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("liveness", "readiness", "startup")}
        assert probes == {
            "liveness": {"path": "/livez", "port": "http"},
            "readiness": {"path": "/readyz", "port": "http"},
            "startup": {"path": "/livez", "port": "http"},
        }
        db = find(manifests, "StatefulSet", f"{RELEASE}-{service}-postgresql")["spec"]["template"]["spec"]
        assert "pg_isready" in db["containers"][0]["readinessProbe"]["exec"]["command"]


def test_helm_test_pods_check_each_enabled_service(manifests, profile):
    test_pods = [doc for doc in of_kind(manifests, "Pod") if is_hook(doc)]
    assert {doc["metadata"]["name"] for doc in test_pods} == {f"{RELEASE}-{s}-test" for s in profile.services}
    for doc in test_pods:
        service = doc["metadata"]["name"].removeprefix(f"{RELEASE}-").removesuffix("-test")
        assert doc["metadata"]["annotations"]["helm.sh/hook"] == "test"
        # Each test pod asks its own service, through the Service, not a pod address.
        assert doc["spec"]["containers"][0]["command"][-1] == f"http://{RELEASE}-{service}:80"


def test_rendered_deployments_run_against_postgresql(manifests, profile, postgres):
    """The contract: each Deployment's migrate and serve commands, env and probes, run for real."""
    # The playbooks create auth's signing key Secret at deploy time; the contract needs a key in it.
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signing = {f"{RELEASE}-{ISSUER}-signing-key": {"signing-key.pem": key.decode()}}
    for service in profile.services:
        # The playbooks create this Secret at deploy time; the contract needs some password in it.
        db_secret = {f"{RELEASE}-{service}-db": {"password": secrets.token_urlsafe(16)}, **signing}
        result = run_contract(manifests, service, postgres, secrets=db_secret)
        assert result.probe_status == {"startup": 200, "liveness": 200, "readiness": 200}, service
        assert len(result.migrate_seconds) == 2, f"{service}: the migration must run twice (idempotent)"
        assert '"connected": true' in result.smoke_output, f"{service}: the helm test command did not pass"
