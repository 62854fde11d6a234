"""Cluster mode: the release site.yml installed for the scenario's profile works on a real cluster.

Enabled services Ready and answering through a port-forward (/readyz, /db-status, a create/read round
trip, with a token from auth where the profile requires tokens, and 401 without one), `helm test` passing,
disabled services and their databases absent, the NetworkPolicies enforced (a pod without the release's labels
reaches no database and no service; projects reaches users and nothing of users' but its API), and the
persistence contract: a persistent profile keeps a record (auth: a client) across a database pod delete; the
ephemeral profile has no PVC and loses it. The persistence test goes last: it restarts the databases. What the
entry does (the gateway's 401 and 429, the Ingress) is test_cluster_gateway.py's.
"""

from __future__ import annotations

import uuid

import pytest
from atlas_profiles import ISSUER, SERVICES
from kube import Cluster, Tokens
from kubernetes.client.exceptions import ApiException

from tests.support.chart import NAMESPACE, RELEASE, helm_binary
from tests.support.postgres import wait_until

pytestmark = pytest.mark.cluster

# Each service's table of records (auth: its clients, made by `python -m auth create-client`).
TABLES = {"users": "users", "projects": "projects", ISSUER: "clients"}


@pytest.fixture(scope="module")
def cluster(mode) -> Cluster:
    return Cluster(mode)


@pytest.fixture(scope="module")
def tokens(cluster, profile) -> Tokens | None:
    """A client that may read and write every API, and its tokens; None where the profile requires no tokens."""
    if not profile.tokens_required:
        return None
    scopes = [f"{s}:{access}" for s in SERVICES if s != ISSUER for access in ("read", "write")]
    return Tokens(cluster, ISSUER, scopes)


def _token(tokens: Tokens | None) -> str | None:
    return tokens.get() if tokens else None


def create_record(cluster: Cluster, profile, service: str, tokens: Tokens | None = None) -> dict:
    """Create one record through the service's API and return it as the API answered."""
    tag = uuid.uuid4().hex[:10]
    token = _token(tokens)
    if service == "users":
        body = {"email": f"m-{tag}@example.test", "name": f"M {tag}"}
        reply = cluster.http("users", "POST", "/api/v1/users", body, token=token)
    else:
        owner = create_record(cluster, profile, "users", tokens)["id"] if "users" in profile.services else 1
        reply = cluster.http(
            "projects", "POST", "/api/v1/projects", {"name": f"p-{tag}", "owner_id": owner}, token=token
        )
        # The owner check is on exactly when the users service is deployed, and the API says so.
        expected = "enabled" if "users" in profile.services else "disabled"
        assert reply.headers.get("x-owner-check") == expected, reply.headers
    assert reply.status == 201, f"POST /api/v1/{service}: {reply.status} {reply.body}"
    return reply.body


def test_enabled_services_and_databases_are_ready(cluster, profile):
    for service in profile.services:
        deployment = cluster.apps.read_namespaced_deployment(f"{RELEASE}-{service}", NAMESPACE)
        assert (deployment.status.available_replicas or 0) == deployment.spec.replicas, f"{service} not available"
        sts = cluster.apps.read_namespaced_stateful_set(f"{RELEASE}-{service}-postgresql", NAMESPACE)
        assert (sts.status.ready_replicas or 0) == sts.spec.replicas, f"{service} database not ready"
        for component in (service, f"{service}-postgresql"):
            # Pods on their way out (an earlier rollout) are not this release's pods any more.
            pods = [p for p in cluster.pods(component) if p.metadata.deletion_timestamp is None]
            assert pods, f"no {component} pods"
            assert all(cluster.is_ready(p) for p in pods), f"{component}: not every pod is Ready"


def test_probes_answer_through_a_port_forward(cluster, profile):
    for service in profile.services:
        assert cluster.http(service, "GET", "/livez").status == 200
        assert cluster.http(service, "GET", "/readyz").status == 200
        status = cluster.http(service, "GET", "/db-status")
        assert status.status == 200
        assert status.body["connected"] is True, status.body


def test_create_then_read_round_trip(cluster, profile, tokens):
    for service in profile.apis:
        record = create_record(cluster, profile, service, tokens)
        reply = cluster.http(service, "GET", f"/api/v1/{service}/{record['id']}", token=_token(tokens))
        assert reply.status == 200
        assert reply.body == record


def test_each_api_refuses_a_call_without_a_token_where_tokens_are_required(cluster, profile, tokens):
    """The services check tokens themselves (behind the gateway's SecurityPolicy too): without one, 401."""
    if not profile.tokens_required:
        pytest.skip(f"profile {profile.name} requires no tokens")
    for service in profile.checked:
        assert cluster.http(service, "GET", f"/api/v1/{service}").status == 401, service
        assert cluster.http(service, "GET", f"/api/v1/{service}", token=_token(tokens)).status == 200, service
        # A token that may only read cannot write (scopes, checked by the service).
        reader = Tokens(cluster, ISSUER, [f"{service}:read"], name=f"molecule-{service}-reader")
        body = {"email": "r@example.test", "name": "R"} if service == "users" else {"name": "r", "owner_id": 1}
        assert cluster.http(service, "POST", f"/api/v1/{service}", body, token=reader.get()).status == 403


def test_helm_test_passes(host, cluster, profile):
    args = [helm_binary(), "test", RELEASE, "--namespace", NAMESPACE, "--timeout", "5m", "--logs"]
    if cluster.context:
        args += ["--kube-context", cluster.context]
    if cluster.kubeconfig:
        args += ["--kubeconfig", cluster.kubeconfig]
    result = host.run_expect([0], " ".join(args))
    ran = {service for service in SERVICES if f"{RELEASE}-{service}-test" in result.stdout}
    assert ran == set(profile.services), result.stdout


def test_disabled_services_and_their_databases_are_absent(cluster, profile):
    if not profile.disabled:
        pytest.skip(f"profile {profile.name} disables no service")
    listings = {
        "Deployment": cluster.apps.list_namespaced_deployment,
        "StatefulSet": cluster.apps.list_namespaced_stateful_set,
        "Service": cluster.core.list_namespaced_service,
        "Secret": cluster.core.list_namespaced_secret,
        "PersistentVolumeClaim": cluster.core.list_namespaced_persistent_volume_claim,
        "ConfigMap": cluster.core.list_namespaced_config_map,
        "Pod": cluster.core.list_namespaced_pod,
    }
    present = {kind: [item.metadata.name for item in list_(NAMESPACE).items] for kind, list_ in listings.items()}
    for service in profile.disabled:
        prefixes = (f"{RELEASE}-{service}", f"data-{RELEASE}-{service}-postgresql")
        left = {kind: [n for n in names if n.startswith(prefixes)] for kind, names in present.items()}
        assert not any(left.values()), f"{service} is disabled but these remain: {left}"


# A TCP connect from inside a pod: exit 0 when it connects within 3 s, 1 otherwise (a policy drops it).
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)"
RESOLVE = "import socket, sys; socket.getaddrinfo(sys.argv[1], None)"


@pytest.fixture(scope="module")
def outsider(cluster, profile):
    """A pod in the release's namespace without any of the release's labels, running a service image."""
    deployment = cluster.apps.read_namespaced_deployment(f"{RELEASE}-{profile.services[0]}", NAMESPACE)
    image = deployment.spec.template.spec.containers[0].image
    name = "atlas-netpol-outsider"
    restricted = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "netpol-outsider"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
            "containers": [
                {
                    "name": "outsider",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", "import time; time.sleep(3600)"],
                    "securityContext": restricted,
                    "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                }
            ],
        },
    }
    cluster.core.create_namespaced_pod(NAMESPACE, body)
    try:
        wait_until(lambda: cluster.core.read_namespaced_pod(name, NAMESPACE).status.phase == "Running", 180, 2)
        yield name
    finally:
        cluster.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)


def _connects(cluster, pod: str, container: str, host: str, port: int) -> bool:
    rc, _, _ = cluster.exec(pod, container, ["python", "-c", CONNECT, host, str(port)])
    return rc == 0


def test_network_policies_keep_other_pods_from_the_databases_and_services(cluster, profile, outsider):
    """Enforced only with a CNI that implements NetworkPolicy: the Molecule profile uses calico."""
    for service in profile.services:
        database = f"{RELEASE}-{service}-postgresql"
        rc, _, err = cluster.exec(outsider, "outsider", ["python", "-c", RESOLVE, database])
        assert rc == 0, f"the outsider cannot even resolve {database}: {err}"  # DNS is not what blocks it
        assert not _connects(cluster, outsider, "outsider", database, 5432), f"an unlabelled pod reached {database}"
        assert not _connects(cluster, outsider, "outsider", f"{RELEASE}-{service}", 80), f"it reached {service}"
        # The service's own pod does reach its database: the policy blocks strangers, not the owner.
        own = cluster.ready_pod(service).metadata.name
        assert _connects(cluster, own, service, database, 5432), f"{service} cannot reach its own database"


def test_projects_still_reaches_users(cluster, profile):
    if not {"users", "projects"} <= set(profile.services):
        pytest.skip(f"profile {profile.name} does not run both services")
    projects = cluster.ready_pod("projects").metadata.name
    assert _connects(cluster, projects, "projects", f"{RELEASE}-users", 80)
    # ... and only users: not the users database.
    assert not _connects(cluster, projects, "projects", f"{RELEASE}-users-postgresql", 5432)


def _make_record(cluster: Cluster, profile, service: str, tokens: Tokens | None) -> dict:
    """A record in the service's database: an API record, or for auth a client (its row in clients)."""
    if service == ISSUER:
        client = Tokens(cluster, ISSUER, ["users:read"], name="molecule-persistence").client()
        return {"client_id": client["client_id"], "client": client}
    return create_record(cluster, profile, service, tokens)


def test_persistence_contract(cluster, profile, tokens):
    claims = cluster.core.list_namespaced_persistent_volume_claim(NAMESPACE).items
    if profile.persistence:
        bound = {c.metadata.name: c.status.phase for c in claims}
        for service in profile.services:
            assert bound.get(f"data-{RELEASE}-{service}-postgresql-0") == "Bound", bound
    else:
        assert claims == [], f"the ephemeral profile must not claim volumes: {[c.metadata.name for c in claims]}"

    # Write first, then restart every database: in ephemeral, projects' owner check needs users' table.
    records = {service: _make_record(cluster, profile, service, tokens) for service in profile.services}
    for service in profile.services:
        old = cluster.ready_pod(f"{service}-postgresql")
        try:
            cluster.core.delete_namespaced_pod(old.metadata.name, NAMESPACE)
        except ApiException as exc:
            pytest.fail(f"could not delete {old.metadata.name}: {exc.reason}")
        cluster.ready_pod(f"{service}-postgresql", timeout=300, not_uid=old.metadata.uid)

    # Tokens already issued stay valid (they are signed, not stored); a new one needs auth's clients.
    token = _token(tokens)
    for service, record in records.items():
        table = TABLES[service]
        rc, out, err = cluster.psql(service, f"SELECT to_regclass('public.{table}') IS NOT NULL")
        assert rc == 0, err
        if service == ISSUER:
            where, row = f"client_id = '{record['client_id']}'", record["client_id"]  # URL-safe base64: no quote
        else:
            where, row = f"id = {int(record['id'])}", int(record["id"])
        if profile.persistence:
            assert out.strip() == "t", f"{service}: table {table} is gone after the database pod restarted"
            query = f"SELECT count(*) FROM {table} WHERE {where}"  # noqa: S608 - constant table, a checked id
            rc, out, err = cluster.psql(service, query)
            assert (rc, out.strip()) == (0, "1"), f"{service}: record {row} lost ({err})"
            # The service reconnects on its own and serves the record again (auth: the client gets a token).
            if service == ISSUER:
                assert Tokens(cluster, ISSUER, []).request(record["client"]).status == 200
            else:
                reply = cluster.http(service, "GET", f"/api/v1/{service}/{row}", token=token)
                assert (reply.status, reply.body) == (200, record)
        else:
            # emptyDir: the new pod starts from an empty data directory, so the table itself is gone.
            assert out.strip() == "f", f"{service}: data survived a database pod delete in the ephemeral profile"
            if service == ISSUER:
                assert Tokens(cluster, ISSUER, []).request(record["client"]).status == 401
            else:
                reply = cluster.http(service, "GET", f"/api/v1/{service}/{row}", token=token)
                assert reply.status != 200, f"{service}: the API still serves record {row}: {reply.body}"
